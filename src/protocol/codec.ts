// Declarative wire codecs. CTDB puts C structs on the wire in host byte order (little-endian on every
// platform Debian ships ctdb for), with the compiler's alignment gaps written out as explicit padding.
//
// Every pull checks each read against `end` and throws ProtocolError; it never reads past `end`.
// Buffers returned by pulls are views into the input (zero copy): copy them if the input is reused.
import { ProtocolError } from './errors';

export interface Codec<T> {
  /** Bytes `push` will write for `v`. */
  size(v: T): number;
  /** Writes `v` at `off`; returns the number of bytes written. `buf` must have room (see `size`). */
  push(v: T, buf: Buffer, off: number): number;
  /** Reads a value from [off, end); `size` is the number of bytes consumed. */
  pull(buf: Buffer, off: number, end: number): { value: T; size: number };
  /** Set when every value has this encoded size (lets arrays reject absurd counts up front). */
  readonly fixedSize?: number;
  /** Present with fixedSize: reads without bounds checks, after the caller checked fixedSize bytes. */
  read?(buf: Buffer, off: number): T;
  /** Present with fixedSize: writes exactly fixedSize bytes. */
  write?(v: T, buf: Buffer, off: number): void;
}

/** A codec whose values all take the same number of bytes (the fast path of structs and arrays). */
export interface FixedCodec<T> extends Codec<T> {
  readonly fixedSize: number;
  read(buf: Buffer, off: number): T;
  write(v: T, buf: Buffer, off: number): void;
}

function isFixed<T>(codec: Codec<T>): codec is FixedCodec<T> {
  return codec.fixedSize !== undefined && codec.read !== undefined && codec.write !== undefined;
}

export type CodecValue<C> = C extends Codec<infer T> ? T : never;

/** Throws unless [off, end) holds at least `n` bytes. */
export function need(what: string, n: number, off: number, end: number): void {
  if (end - off < n) {
    throw new ProtocolError(`truncated ${what}: need ${n} bytes, have ${Math.max(0, end - off)}`);
  }
}

/** A fixed-size codec from an unchecked reader and writer. */
export function fixed<T>(name: string, n: number, read: (buf: Buffer, off: number) => T, write: (v: T, buf: Buffer, off: number) => void): FixedCodec<T> {
  return {
    fixedSize: n,
    read,
    write,
    size: () => n,
    push(v, buf, off) {
      write(v, buf, off);
      return n;
    },
    pull(buf, off, end) {
      need(name, n, off, end);
      return { value: read(buf, off), size: n };
    },
  };
}

export const u8 = fixed<number>('u8', 1, (b, o) => b.readUInt8(o), (v, b, o) => b.writeUInt8(v, o));
export const u16 = fixed<number>('u16', 2, (b, o) => b.readUInt16LE(o), (v, b, o) => b.writeUInt16LE(v, o));
export const u32 = fixed<number>('u32', 4, (b, o) => b.readUInt32LE(o), (v, b, o) => b.writeUInt32LE(v, o));
export const i32 = fixed<number>('i32', 4, (b, o) => b.readInt32LE(o), (v, b, o) => b.writeInt32LE(v, o));
export const u64 = fixed<bigint>('u64', 8, (b, o) => b.readBigUInt64LE(o), (v, b, o) => b.writeBigUInt64LE(v, o));
export const double = fixed<number>('double', 8, (b, o) => b.readDoubleLE(o), (v, b, o) => b.writeDoubleLE(v, o));
/** pid_t: a signed 32-bit int on Linux. */
export const pid = i32;

export const bool = fixed<boolean>(
  'bool',
  1,
  (b, o) => {
    const v = b.readUInt8(o);
    if (v > 1) throw new ProtocolError(`bad bool value ${v}`);
    return v === 1;
  },
  (v, b, o) => b.writeUInt8(v ? 1 : 0, o),
);

/** struct timeval on LP64: tv_sec and tv_usec are both 64-bit. Held as plain numbers (exact below 2^53). */
export interface Timeval {
  sec: number;
  usec: number;
}

function readSafeI64(b: Buffer, o: number): number {
  const v = b.readBigInt64LE(o);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new ProtocolError(`timeval field ${v} out of range`);
  }
  return Number(v);
}

export const timeval = fixed<Timeval>(
  'timeval',
  16,
  (b, o) => ({ sec: readSafeI64(b, o), usec: readSafeI64(b, o + 8) }),
  (v, b, o) => {
    b.writeBigInt64LE(BigInt(v.sec), o);
    b.writeBigInt64LE(BigInt(v.usec), o + 8);
  },
);

/** Decodes up to the first NUL (strndup semantics) inside [start, end). */
function readCString(buf: Buffer, start: number, end: number): string {
  const nul = buf.subarray(start, end).indexOf(0);
  return buf.toString('utf8', start, nul >= 0 ? start + nul : end);
}

/**
 * A NUL-terminated string that fills the rest of the payload. null travels as 0 bytes, '' as one NUL.
 * Pull consumes everything up to `end` (the length always comes from the enclosing context).
 */
export const string: Codec<string | null> = {
  size: (v) => (v === null ? 0 : Buffer.byteLength(v) + 1),
  push(v, buf, off) {
    if (v === null) return 0;
    const n = buf.write(v, off, 'utf8');
    buf[off + n] = 0;
    return n + 1;
  },
  pull(buf, off, end) {
    if (end <= off) return { value: null, size: 0 };
    return { value: readCString(buf, off, end), size: end - off };
  },
};

/** Text filling the rest of the payload without a NUL (DUMP_MEMORY's talloc report); 0 bytes = null. */
export const text: Codec<string | null> = {
  size: (v) => (v === null ? 0 : Buffer.byteLength(v)),
  push: (v, buf, off) => (v === null ? 0 : buf.write(v, off, 'utf8')),
  // Reading stops at a NUL anyway, so a client-library style terminator is dropped.
  pull: string.pull,
};

/** u32 length (including the NUL; 0 = null) followed by the NUL-terminated string. */
export const stringn: Codec<string | null> = {
  size: (v) => 4 + string.size(v),
  push(v, buf, off) {
    const n = string.push(v, buf, off + 4);
    buf.writeUInt32LE(n, off);
    return 4 + n;
  },
  pull(buf, off, end) {
    need('stringn length', 4, off, end);
    const len = buf.readUInt32LE(off);
    need('stringn', len, off + 4, end);
    return { value: string.pull(buf, off + 4, off + 4 + len).value, size: 4 + len };
  },
};

/** A fixed char[n] holding a NUL-terminated string (at most n-1 bytes of text). */
export function chararray(n: number): FixedCodec<string> {
  return fixed<string>(
    `char[${n}]`,
    n,
    (b, o) => readCString(b, o, o + n),
    (v, b, o) => {
      if (Buffer.byteLength(v) > n - 1) throw new ProtocolError(`string '${v}' does not fit in char[${n}]`);
      b.fill(0, o, o + n);
      b.write(v, o, 'utf8');
    },
  );
}

/** Exactly n raw bytes. */
export function bytes(n: number): FixedCodec<Buffer> {
  return fixed<Buffer>(
    `${n} bytes`,
    n,
    (b, o) => b.subarray(o, o + n),
    (v, b, o) => {
      if (v.length !== n) throw new ProtocolError(`expected ${n} bytes, got ${v.length}`);
      v.copy(b, o);
    },
  );
}

/** Everything up to the end of the payload. */
export const restBytes: Codec<Buffer> = {
  size: (v) => v.length,
  push: (v, buf, off) => v.copy(buf, off),
  pull: (buf, off, end) => ({ value: buf.subarray(off, Math.max(off, end)), size: Math.max(0, end - off) }),
};

/** TDB_DATA with a u32 length prefix. */
export const sizedBytes: Codec<Buffer> = {
  size: (v) => 4 + v.length,
  push(v, buf, off) {
    buf.writeUInt32LE(v.length, off);
    v.copy(buf, off + 4);
    return 4 + v.length;
  },
  pull(buf, off, end) {
    need('data length', 4, off, end);
    const len = buf.readUInt32LE(off);
    need('data', len, off + 4, end);
    return { value: buf.subarray(off + 4, off + 4 + len), size: 4 + len };
  },
};

/** n alignment bytes: written as zeros, skipped (not checked) on read, like ctdb_padding_pull. */
export interface Padding {
  pad: number;
}
export const pad = (n: number): Padding => ({ pad: n });

/** One entry of a struct table: [field name, codec] or padding. */
export type FieldList<T> = ReadonlyArray<{ [K in keyof T]-?: readonly [K, Codec<T[K]>] }[keyof T] | Padding>;

/** Pulls one struct member, naming the member in any error. */
function pullField<T>(structName: string, key: unknown, codec: Codec<T>, buf: Buffer, off: number, end: number): { value: T; size: number } {
  try {
    return codec.pull(buf, off, end);
  } catch (err) {
    if (err instanceof ProtocolError) throw new ProtocolError(`${structName}.${String(key)}: ${err.reason}`);
    throw err;
  }
}

interface StructEntry {
  key: string | null;
  codec: Codec<unknown> | null;
  /** Padding bytes (entries without a codec). */
  pad: number;
}

function structEntries<T>(fields: FieldList<T>): StructEntry[] {
  return fields.map((f) => ('pad' in f ? { key: null, codec: null, pad: f.pad } : { key: String(f[0]), codec: f[1] as Codec<unknown>, pad: 0 }));
}

/**
 * Straight-line reader and writer for a fixed struct, generated once per table: one object literal
 * and one call per member, so V8 sees a single object shape and monomorphic calls (a generic loop
 * over the members is 2-3x slower on the packet hot path). Keys come from our own tables.
 */
function generateAccessors<T>(
  members: Array<{ key: string; codec: FixedCodec<unknown>; at: number }>,
  pads: Array<{ at: number; n: number }>,
): { read: (buf: Buffer, off: number) => T; write: (v: T, buf: Buffer, off: number) => void } {
  const names = members.map((_, i) => `m${i}`);
  const readBody = `return { ${members.map((m, i) => `${JSON.stringify(m.key)}: m${i}.read(buf, off + ${m.at})`).join(', ')} };`;
  const writeBody = [
    ...members.map((m, i) => `m${i}.write(v[${JSON.stringify(m.key)}], buf, off + ${m.at});`),
    ...pads.map((p) => `buf.fill(0, off + ${p.at}, off + ${p.at + p.n});`),
  ].join('\n');
  const codecs = members.map((m) => m.codec);
  const compile = (params: string, body: string): unknown => new Function(...names, `return function (${params}) { ${body} };`)(...codecs);
  return {
    read: compile('buf, off', readBody) as (buf: Buffer, off: number) => T,
    write: compile('v, buf, off', writeBody) as (v: T, buf: Buffer, off: number) => void,
  };
}

/** A struct whose members all have fixed sizes: reads at precomputed offsets after one bounds check. */
function compileFixed<T>(name: string, entries: StructEntry[]): FixedCodec<T> | undefined {
  if (!entries.every((e) => e.codec === null || isFixed(e.codec))) return undefined;
  const members: Array<{ key: string; codec: FixedCodec<unknown>; at: number }> = [];
  const pads: Array<{ at: number; n: number }> = [];
  let size = 0;
  for (const e of entries) {
    if (e.codec === null) pads.push({ at: size, n: e.pad });
    else members.push({ key: e.key as string, codec: e.codec as FixedCodec<unknown>, at: size });
    size += e.codec === null ? e.pad : (e.codec.fixedSize as number);
  }
  const { read, write } = generateAccessors<T>(members, pads);
  return fixed(name, size, read, write);
}

/** A C struct as a table of named fields and explicit padding, in wire order. */
export function struct<T>(name: string, fields: FieldList<T>): Codec<T> {
  const entries = structEntries(fields);
  const fast = compileFixed<T>(name, entries);
  if (fast !== undefined) return fast;
  return {
    size(v) {
      const rec = v as Record<string, unknown>;
      let n = 0;
      for (const e of entries) n += e.codec ? e.codec.size(rec[e.key as string]) : e.pad;
      return n;
    },
    push(v, buf, off) {
      const rec = v as Record<string, unknown>;
      let at = off;
      for (const e of entries) {
        if (e.codec) {
          at += e.codec.push(rec[e.key as string], buf, at);
        } else {
          buf.fill(0, at, at + e.pad);
          at += e.pad;
        }
      }
      return at - off;
    },
    pull(buf, off, end) {
      const out: Record<string, unknown> = {};
      let at = off;
      for (const e of entries) {
        if (e.codec === null) {
          need(`${name} padding`, e.pad, at, end);
          at += e.pad;
        } else if (isFixed(e.codec)) {
          need(`${name}.${e.key}`, e.codec.fixedSize, at, end);
          out[e.key as string] = e.codec.read(buf, at);
          at += e.codec.fixedSize;
        } else {
          const r = pullField(name, e.key, e.codec, buf, at, end);
          out[e.key as string] = r.value;
          at += r.size;
        }
      }
      return { value: out as T, size: at - off };
    },
  };
}

/** A struct that must be fixed-size (all members fixed): typed as such for unchecked reads. */
export function fixedStruct<T>(name: string, fields: FieldList<T>): FixedCodec<T> {
  const codec = compileFixed<T>(name, structEntries(fields));
  if (codec === undefined) throw new Error(`${name}: every member of a fixedStruct needs a fixed size`);
  return codec;
}

/** A count followed by that many items (optionally with alignment padding after the count). */
export function array<T>(name: string, count: Codec<number>, item: Codec<T>, padAfterCount = 0): Codec<T[]> {
  return {
    size(v) {
      const head = count.size(v.length) + padAfterCount;
      if (item.fixedSize !== undefined) return head + v.length * item.fixedSize;
      return v.reduce((n, x) => n + item.size(x), head);
    },
    push(v, buf, off) {
      let at = off + count.push(v.length, buf, off);
      buf.fill(0, at, at + padAfterCount);
      at += padAfterCount;
      for (const x of v) at += item.push(x, buf, at);
      return at - off;
    },
    pull(buf, off, end) {
      const c = count.pull(buf, off, end);
      if (c.value < 0) throw new ProtocolError(`${name}: negative count ${c.value}`);
      let at = off + c.size;
      need(`${name} padding`, padAfterCount, at, end);
      at += padAfterCount;
      const out: T[] = [];
      if (isFixed(item)) {
        need(`${name} of ${c.value}`, c.value * item.fixedSize, at, end);
        for (let i = 0; i < c.value; i++, at += item.fixedSize) out.push(item.read(buf, at));
      } else {
        for (let i = 0; i < c.value; i++) {
          const r = item.pull(buf, at, end);
          out.push(r.value);
          at += r.size;
        }
      }
      return { value: out, size: at - off };
    },
  };
}

/** Exactly n items, no count on the wire (C arrays such as buckets[16]). */
export function fixedArray<T>(name: string, n: number, item: Codec<T>): FixedCodec<T[]> {
  if (!isFixed(item)) throw new Error(`fixedArray ${name}: items must have a fixed size`);
  const itemSize = item.fixedSize;
  return fixed(
    name,
    n * itemSize,
    (buf, off) => Array.from({ length: n }, (_, i) => item.read(buf, off + i * itemSize)),
    (v, buf, off) => {
      if (v.length !== n) throw new ProtocolError(`${name}: expected ${n} items, got ${v.length}`);
      v.forEach((x, i) => item.write(x, buf, off + i * itemSize));
    },
  );
}

/** A codec for B stored on the wire as A (e.g. a db_id padded to 8 bytes held as a plain number). */
export function mapped<A, B>(codec: Codec<A>, decode: (a: A) => B, encode: (b: B) => A): Codec<B> {
  if (isFixed(codec)) {
    return fixed<B>(
      'mapped',
      codec.fixedSize,
      (buf, off) => decode(codec.read(buf, off)),
      (v, buf, off) => codec.write(encode(v), buf, off),
    );
  }
  return {
    size: (v) => codec.size(encode(v)),
    push: (v, buf, off) => codec.push(encode(v), buf, off),
    pull(buf, off, end) {
      const r = codec.pull(buf, off, end);
      return { value: decode(r.value), size: r.size };
    },
  };
}

/** Encodes one value into a fresh buffer of exactly `size(v)` bytes. */
export function encode<T>(codec: Codec<T>, v: T): Buffer {
  const buf = Buffer.alloc(codec.size(v));
  const n = codec.push(v, buf, 0);
  if (n !== buf.length) throw new Error(`codec wrote ${n} bytes, announced ${buf.length}`);
  return buf;
}

/** Decodes a whole payload; errors name `what`; `exact` also rejects trailing bytes. */
export function decode<T>(codec: Codec<T>, buf: Buffer, what: string, exact = false): T {
  let r: { value: T; size: number };
  try {
    r = codec.pull(buf, 0, buf.length);
  } catch (err) {
    if (err instanceof ProtocolError) throw new ProtocolError(`${what}: ${err.reason}`);
    throw err;
  }
  if (exact && r.size !== buf.length) throw new ProtocolError(`${what}: oversized: expected ${r.size} bytes, got ${buf.length}`);
  return r.value;
}

/** The value argument of a typed encoder: optional when the payload is empty (void). */
export type ValueArg<T> = [T] extends [void] ? [value?: undefined] : [value: T];
