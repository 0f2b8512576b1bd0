// Shapes shared by the control handler groups.
import type { ControlCode, ControlReplies, ControlRequests } from '../../protocol';
import type { Client } from '../client';
import type { ControlRequest } from '../control-router';
import type { Daemon } from '../daemon';

export interface ControlContext {
  readonly daemon: Daemon;
  readonly request: ControlRequest;
  /** The local client that sent it; undefined for controls from peers or the daemon itself. */
  readonly client: Client | undefined;
}

/** `status` for value-in-status controls, `reply` for a payload, `error` for status -1. */
export interface Outcome<R> {
  status?: number;
  reply?: R;
  error?: string;
}

type Req<C extends ControlCode> = C extends keyof ControlRequests ? ControlRequests[C] : never;
type Rep<C extends ControlCode> = C extends keyof ControlReplies ? ControlReplies[C] : never;

export type ControlHandler<C extends ControlCode> = (
  request: Req<C>,
  ctx: ControlContext,
) => Outcome<Rep<C>> | Promise<Outcome<Rep<C>>>;

export type HandlerTable = { [C in ControlCode]?: ControlHandler<C> };

export const OK: Outcome<never> = Object.freeze({});
