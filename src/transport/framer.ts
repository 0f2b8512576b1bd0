// Splits a CTDB byte stream into packets by their u32 length prefix, in plain
// TypeScript. The daemon frames its sockets natively (native-io.ts); this one serves
// node:net clients, the framing tests (as the oracle) and the benchmark baseline.
import os from 'node:os';
import { CTDB_DS_ALIGNMENT, HEADER_SIZE } from '../protocol/constants';
import { ProtocolError } from '../protocol/errors';

/** `client`: unix socket, any length >= 32 (smbd sends unpadded packets). `peer`: TCP, also a multiple of 8. */
export type FramingMode = 'client' | 'peer';

/** CTDB has no limit; one is needed so a corrupt length cannot make us allocate 4 GiB. */
export const DEFAULT_MAX_PACKET_SIZE = 64 * 1024 * 1024;

const LENGTH_PREFIX = 4;

/** The length prefix is in host byte order, like every CTDB header field. */
const readLength: (buf: Buffer, off: number) => number =
  os.endianness() === 'LE' ? (buf, off) => buf.readUInt32LE(off) : (buf, off) => buf.readUInt32BE(off);

/** Why a packet of `length` bytes ends the connection, or null when it is fine. Same words as native/io/framing.cc. */
export function packetLengthError(length: number, mode: FramingMode, maxPacketSize: number): string | null {
  if (length < HEADER_SIZE) return `packet length ${length} below header size ${HEADER_SIZE}`;
  if (mode === 'peer' && length % CTDB_DS_ALIGNMENT !== 0) {
    return `packet length ${length} not a multiple of ${CTDB_DS_ALIGNMENT} on a peer connection`;
  }
  if (length > maxPacketSize) return `packet length ${length} above maximum ${maxPacketSize}`;
  return null;
}

/** The stream cannot be framed any more; the connection must be dropped. */
export class FramingError extends ProtocolError {
  constructor(reason: string) {
    super(reason);
    this.name = 'FramingError';
  }
}

export interface PacketStreamOptions {
  mode?: FramingMode;
  maxPacketSize?: number;
}

export class PacketStream {
  readonly #onPacket: (packet: Buffer) => void;
  readonly #mode: FramingMode;
  readonly #maxPacketSize: number;
  /** A packet begun in an earlier chunk: sized to its length once the prefix is known. */
  #partial: Buffer | null = null;
  #filled = 0;
  #failure: FramingError | null = null;

  /** Packets passed to `onPacket` are views of pushed chunks or of private buffers: they stay valid. */
  constructor(onPacket: (packet: Buffer) => void, options: PacketStreamOptions = {}) {
    this.#onPacket = onPacket;
    this.#mode = options.mode ?? 'client';
    this.#maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
  }

  /** Bytes of an unfinished packet held back for the next chunk. */
  get buffered(): number {
    return this.#filled;
  }

  /** Feeds the next bytes of the stream; throws FramingError (now and on every later push) on a bad length. */
  push(chunk: Buffer): void {
    if (this.#failure !== null) throw this.#failure;
    let pos = this.#partial === null ? 0 : this.#continuePartial(chunk);
    if (this.#partial !== null) return;
    while (chunk.length - pos >= LENGTH_PREFIX) {
      const length = this.#checkedLength(chunk, pos);
      if (chunk.length - pos < length) break;
      this.#onPacket(chunk.subarray(pos, pos + length));
      pos += length;
    }
    if (pos < chunk.length) this.#startPartial(chunk, pos);
  }

  #checkedLength(buf: Buffer, off: number): number {
    const length = readLength(buf, off);
    const error = packetLengthError(length, this.#mode, this.#maxPacketSize);
    if (error !== null) {
      this.#failure = new FramingError(error);
      this.#partial = null;
      this.#filled = 0;
      throw this.#failure;
    }
    return length;
  }

  #startPartial(chunk: Buffer, pos: number): void {
    const rest = chunk.length - pos;
    // The prefix of a split packet may itself be split; hold it until its length is known.
    this.#partial = Buffer.allocUnsafe(rest >= LENGTH_PREFIX ? readLength(chunk, pos) : LENGTH_PREFIX);
    this.#filled = chunk.copy(this.#partial, 0, pos);
  }

  /** Copies from `chunk` into the pending packet, emits it when complete; returns the bytes used. */
  #continuePartial(chunk: Buffer): number {
    let partial = this.#partial as Buffer;
    let used = 0;
    if (this.#filled < LENGTH_PREFIX) {
      used = chunk.copy(partial, this.#filled, 0, LENGTH_PREFIX - this.#filled);
      this.#filled += used;
      if (this.#filled < LENGTH_PREFIX) return used;
      const grown = Buffer.allocUnsafe(this.#checkedLength(partial, 0));
      partial.copy(grown, 0, 0, LENGTH_PREFIX);
      this.#partial = partial = grown;
    }
    const copied = chunk.copy(partial, this.#filled, used, used + partial.length - this.#filled);
    this.#filled += copied;
    used += copied;
    if (this.#filled === partial.length) {
      this.#partial = null;
      this.#filled = 0;
      this.#onPacket(partial);
    }
    return used;
  }
}
