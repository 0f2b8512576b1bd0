// Control dispatch: one table from opcode to handler, assembled from the handler
// groups. Decoding of the request and encoding of the reply happen here, once, through
// the protocol's opcode → codec table, so handlers see typed values only.
import { CONTROLS, ControlCode, ProtocolError, controlName, decodeControlRequest, encodeControlReply } from '../../protocol';
import type { Client } from '../client';
import type { ControlReply, ControlRequest } from '../control-router';
import { failure } from '../control-router';
import type { Daemon } from '../daemon';
import type { HandlerTable, Outcome } from './types';
import { generalControls } from './general';
import { nodeControls } from './nodes';
import { messagingControls } from './messaging';
import { publicIpControls } from './public-ips';
import { databaseControls } from './databases';
import { databaseAdminControls } from './database-admin';
import { vacuumControls } from './vacuum';
import { traverseControls } from './traverse';
import { persistentControls } from './persistent';

const HANDLERS: HandlerTable = {
  ...generalControls,
  ...nodeControls,
  ...messagingControls,
  ...publicIpControls,
  ...databaseControls,
  ...databaseAdminControls,
  ...vacuumControls,
  ...traverseControls,
  ...persistentControls,
};

const EMPTY = Buffer.alloc(0);

export async function dispatchControl(d: Daemon, req: ControlRequest, client: Client | undefined): Promise<ControlReply> {
  const code = req.opcode as ControlCode;
  const spec = CONTROLS[code];
  const handler = HANDLERS[code] as ((value: unknown, ctx: unknown) => Outcome<unknown> | Promise<Outcome<unknown>>) | undefined;
  if (spec === undefined || handler === undefined) {
    const name = spec === undefined ? `${req.opcode}` : controlName(code);
    d.logger.error(`Control ${name} is not implemented${spec?.obsolete === true ? ' any more' : ''}`);
    return failure(`control ${name} not implemented`);
  }
  let value: unknown;
  try {
    value = decodeControlRequest(code, req.data);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    d.logger.error(`Control ${controlName(code)} from node ${req.srcnode}: ${err.message}`);
    return failure(err.message);
  }
  let outcome: Outcome<unknown>;
  try {
    outcome = await handler(value, { daemon: d, request: req, client });
  } catch (err) {
    d.logger.error(`Control ${controlName(code)} failed: ${(err as Error).message}`);
    return failure((err as Error).message);
  }
  if (outcome.error !== undefined) return failure(outcome.error);
  const status = outcome.status ?? 0;
  if (outcome.reply === undefined || status < 0) return { status, data: EMPTY, errorMessage: null };
  try {
    return { status, data: encodeControlReply(code, outcome.reply as never), errorMessage: null };
  } catch (err) {
    // A reply we cannot encode is our bug; the caller gets an error, the daemon goes on.
    d.logger.error(`Control ${controlName(code)}: cannot encode the reply: ${(err as Error).message}`);
    return failure('internal error encoding the reply');
  }
}
