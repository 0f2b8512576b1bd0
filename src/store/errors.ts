import { tdbStatusName } from './constants';

/** A failed store operation. The message names the file, the operation and what went wrong. */
export class TdbError extends Error {
  /** "TDB_ERR_CORRUPT", "TDB_ERR_NOLOCK", ... */
  readonly code: string;
  constructor(
    message: string,
    readonly status: number,
    readonly errno: number,
  ) {
    super(message);
    this.name = 'TdbError';
    this.code = tdbStatusName(status);
  }
}
