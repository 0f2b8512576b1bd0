// The text format of Debian's `tdbdump` (and of `ltdbtool dump`, which adds the decoded
// ctdb record header), and its parser for `tdbrestore`.
import { LTDB_HEADER_SIZE, buildLtdbRecord, parseLtdbRecord, type LtdbHeader } from './ltdb-header';

// Printable ASCII except '"' and '\' is written as is; every other byte as \XX (upper-case hex).
const escapes: string[] = Array.from({ length: 256 }, (_, b) =>
  b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${b.toString(16).toUpperCase().padStart(2, '0')}`,
);

export function escapeTdbData(data: Buffer): string {
  let out = '';
  for (const b of data) out += escapes[b];
  return out;
}

/** One record exactly as `tdbdump` prints it. */
export function formatDumpRecord(key: Buffer, data: Buffer): string {
  return `{\nkey(${key.length}) = "${escapeTdbData(key)}"\ndata(${data.length}) = "${escapeTdbData(data)}"\n}\n`;
}

/** One record as `ltdbtool dump` prints it: header fields between key and data. */
export function formatLtdbDumpRecord(key: Buffer, header: LtdbHeader, data: Buffer): string {
  // dmaster is printed as a C int, so CTDB_UNKNOWN_PNN shows as -1.
  const dmaster = header.dmaster | 0;
  const flags = header.flags.toString(16).toUpperCase();
  return `{\nkey(${key.length}) = "${escapeTdbData(key)}"\ndmaster: ${dmaster}\nrsn: ${header.rsn}\nflags: 0x${flags}\ndata(${data.length}) = "${escapeTdbData(data)}"\n}\n`;
}

/**
 * Formats a stored ctdb value for an ltdb dump; undefined for empty (header-only) records
 * unless `keepEmpty`. Throws for values too short to hold a header.
 */
export function formatLtdbValue(key: Buffer, value: Buffer, keepEmpty: boolean): string | undefined {
  if (value.length === LTDB_HEADER_SIZE && !keepEmpty) return undefined;
  const { header, data } = parseLtdbRecord(value);
  return formatLtdbDumpRecord(key, header, data);
}

export interface DumpedRecord {
  key: Buffer;
  /** The value to store: for ltdb dumps, header and data joined again. */
  data: Buffer;
}

export class DumpParseError extends Error {
  constructor(message: string, readonly line: number) {
    super(`line ${line}: ${message}`);
    this.name = 'DumpParseError';
  }
}

/** Parses tdbdump (or ltdbtool dump) output. Lengths and escapes are checked strictly. */
export function* parseDump(text: Buffer): Generator<DumpedRecord> {
  const s = text.toString('latin1');
  let pos = 0;
  let line = 1;
  const fail = (what: string): never => {
    throw new DumpParseError(what, line);
  };
  const expect = (literal: string): void => {
    if (!s.startsWith(literal, pos)) fail(`expected ${JSON.stringify(literal)}`);
    pos += literal.length;
    if (literal.endsWith('\n')) line++;
  };
  const field = (name: string): Buffer => {
    expect(`${name}(`);
    const close = s.indexOf(') = "', pos);
    const declared = close < 0 ? NaN : Number(s.slice(pos, close));
    if (!Number.isSafeInteger(declared) || declared < 0) fail(`bad ${name} length`);
    pos = close + 5;
    const bytes: number[] = [];
    while (pos < s.length && s[pos] !== '"') {
      if (s[pos] === '\\') {
        const hex = s.slice(pos + 1, pos + 3);
        if (!/^[0-9A-Fa-f]{2}$/.test(hex)) fail(`invalid escape \\${hex}`);
        bytes.push(parseInt(hex, 16));
        pos += 3;
      } else {
        if (s[pos] === '\n') line++;
        bytes.push(s.charCodeAt(pos++));
      }
    }
    if (pos >= s.length) fail(`unterminated ${name}`);
    if (bytes.length !== declared) fail(`${name} has ${bytes.length} bytes, header says ${declared}`);
    expect('"\n');
    return Buffer.from(bytes);
  };
  const headerLine = (name: string, pattern: RegExp): string => {
    expect(`${name}: `);
    const end = s.indexOf('\n', pos);
    const value = s.slice(pos, end < 0 ? s.length : end);
    if (!pattern.test(value)) fail(`bad ${name} ${JSON.stringify(value)}`);
    pos = end < 0 ? s.length : end;
    expect('\n');
    return value;
  };
  while (pos < s.length) {
    expect('{\n');
    const key = field('key');
    let header: LtdbHeader | undefined;
    if (s.startsWith('dmaster: ', pos)) {
      const dmaster = Number(headerLine('dmaster', /^-?\d+$/)) >>> 0;
      const rsn = BigInt(headerLine('rsn', /^\d+$/));
      const flags = parseInt(headerLine('flags', /^0x[0-9A-Fa-f]+$/).slice(2), 16);
      header = { rsn, dmaster, reserved1: 0, flags };
    }
    const data = field('data');
    expect('}\n');
    yield { key, data: header ? buildLtdbRecord(header, data) : data };
  }
}
