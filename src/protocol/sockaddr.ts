// ctdb_sock_addr: a raw 28-byte union of sockaddr_in / sockaddr_in6. The family is host order, the
// port network order (a copy of the OS struct). Only the family's own bytes matter on read: smbd may
// leave garbage in the rest, and flowinfo / scope_id are not used by CTDB.
import { type FixedCodec, fixed } from './codec';
import { ProtocolError } from './errors';

export interface SockAddr {
  family: 'ipv4' | 'ipv6';
  /** Dotted quad, or RFC 5952 text for IPv6 (lower case, longest zero run as "::"). */
  address: string;
  port: number;
}

export const SOCK_ADDR_SIZE = 28;
const AF_INET = 2;
const AF_INET6 = 10;

function parseIpv4(text: string, out: Buffer, off: number): boolean {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return false;
  parts.forEach((p, i) => (out[off + i] = Number(p)));
  return true;
}

/** Writes the 16 bytes of an IPv6 address; false if `text` is not one. */
function parseIpv6(text: string, out: Buffer, off: number): boolean {
  let s = text;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    // An embedded IPv4 tail ("::ffff:1.2.3.4") becomes two hex groups.
    const v4 = Buffer.alloc(4);
    if (lastColon < 0 || !parseIpv4(s.slice(lastColon + 1), v4, 0)) return false;
    s = `${s.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const split = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = split(halves[0]);
  const tail = halves.length === 2 ? split(halves[1]) : [];
  const zeros = 8 - head.length - tail.length;
  if (halves.length === 2 ? zeros < 1 : zeros !== 0) return false;
  const groups = [...head, ...new Array<string>(halves.length === 2 ? zeros : 0).fill('0'), ...tail];
  if (!groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), off + 2 * i));
  return true;
}

function formatIpv6(buf: Buffer, off: number): string {
  const words = Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(off + 2 * i));
  // RFC 5952: compress the longest run (length >= 2) of zero words, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const text = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (best < 0) return text(words);
  return `${text(words.slice(0, best))}::${text(words.slice(best + bestLen))}`;
}

export const sockAddrCodec: FixedCodec<SockAddr> = fixed<SockAddr>(
  'sock_addr',
  SOCK_ADDR_SIZE,
  (buf, off) => {
    const family = buf.readUInt16LE(off);
    const port = buf.readUInt16BE(off + 2);
    if (family === AF_INET) return { family: 'ipv4', address: `${buf[off + 4]}.${buf[off + 5]}.${buf[off + 6]}.${buf[off + 7]}`, port };
    if (family === AF_INET6) return { family: 'ipv6', address: formatIpv6(buf, off + 8), port };
    throw new ProtocolError(`bad address family ${family}`);
  },
  (v, buf, off) => {
    buf.fill(0, off, off + SOCK_ADDR_SIZE);
    const ok = v.family === 'ipv4' ? parseIpv4(v.address, buf, off + 4) : parseIpv6(v.address, buf, off + 8);
    if (!ok) throw new ProtocolError(`bad ${v.family} address '${v.address}'`);
    buf.writeUInt16LE(v.family === 'ipv4' ? AF_INET : AF_INET6, off);
    buf.writeUInt16BE(v.port, off + 2);
  },
);

/** Parses "1.2.3.4" or an IPv6 text into a SockAddr (port 0 unless given); null if it is neither. */
export function parseSockAddr(address: string, port = 0): SockAddr | null {
  const scratch = Buffer.alloc(16);
  if (parseIpv4(address, scratch, 0)) return { family: 'ipv4', address, port };
  if (parseIpv6(address, scratch, 0)) return { family: 'ipv6', address: formatIpv6(scratch, 0), port };
  return null;
}
