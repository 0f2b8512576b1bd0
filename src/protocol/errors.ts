/** A packet or payload that does not follow the CTDB wire format (truncated, bad magic, bad value). */
export class ProtocolError extends Error {
  /** Human-readable cause, e.g. "truncated REQ_CONTROL: need 60 bytes, have 44". */
  readonly reason: string;

  constructor(reason: string) {
    super(reason);
    this.name = 'ProtocolError';
    this.reason = reason;
  }
}
