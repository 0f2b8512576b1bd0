// IP address text exactly as CTDB reads and prints it: glibc inet_pton()/inet_ntop() rules, plus
// CTDB's own ip_from_string() extras (optional [brackets], IPv4-mapped IPv6 becomes IPv4).
// Node's net.isIP() differs (it accepts zone ids such as "fe80::1%eth0"), hence this module.

export type InetFamily = 4 | 6;

export interface InetAddress {
  family: InetFamily;
  /** Canonical text, as inet_ntop() prints it (what `ctdb listnodes` shows). */
  address: string;
  bytes: Uint8Array;
}

/** glibc inet_pton(AF_INET): exactly four decimal parts 0..255, no leading zeros. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i];
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

/** glibc inet_pton(AF_INET6), including a trailing dotted IPv4 part. */
export function parseIPv6(text: string): Uint8Array | undefined {
  const bytes = new Uint8Array(16);
  let out = 0;
  let gapAt = -1;
  let pos = 0;
  if (text[0] === ':') {
    if (text[1] !== ':') return undefined;
    pos = 1;
  }
  let groupStart = pos;
  let digits = 0;
  let value = 0;
  let sawIPv4 = false;
  for (; pos < text.length; pos++) {
    const ch = text[pos];
    const hex = /^[0-9a-fA-F]$/.test(ch) ? parseInt(ch, 16) : -1;
    if (hex >= 0) {
      if (digits === 4) return undefined;
      value = (value << 4) | hex;
      digits++;
      continue;
    }
    if (ch === ':') {
      groupStart = pos + 1;
      if (digits === 0) {
        if (gapAt >= 0) return undefined;
        gapAt = out;
        continue;
      }
      if (pos + 1 === text.length) return undefined;
      if (out + 2 > 16) return undefined;
      bytes[out++] = value >> 8;
      bytes[out++] = value & 0xff;
      digits = 0;
      value = 0;
      continue;
    }
    if (ch === '.' && out + 4 <= 16) {
      const v4 = parseIPv4(text.slice(groupStart));
      if (v4 === undefined) return undefined;
      bytes.set(v4, out);
      out += 4;
      sawIPv4 = true;
      break;
    }
    return undefined;
  }
  if (!sawIPv4 && digits > 0) {
    if (out + 2 > 16) return undefined;
    bytes[out++] = value >> 8;
    bytes[out++] = value & 0xff;
  }
  if (gapAt >= 0) {
    if (out === 16) return undefined;
    const tail = bytes.slice(gapAt, out);
    bytes.fill(0, gapAt);
    bytes.set(tail, 16 - tail.length);
    out = 16;
  }
  return out === 16 ? bytes : undefined;
}

export function formatIPv4(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 4)).join('.');
}

/** glibc inet_ntop(AF_INET6): longest zero run (2+ groups, first wins) becomes "::". */
export function formatIPv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i] << 8) | bytes[i + 1]);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && words[end] === 0) end++;
    if (end - i > bestLen) {
      bestStart = i;
      bestLen = end - i;
    }
    i = end;
  }
  if (bestLen < 2) bestStart = -1;
  let text = '';
  for (let i = 0; i < 8; i++) {
    if (bestStart >= 0 && i >= bestStart && i < bestStart + bestLen) {
      if (i === bestStart) text += ':';
      continue;
    }
    if (i !== 0) text += ':';
    if (i === 6 && bestStart === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
      return text + formatIPv4(bytes.subarray(12));
    }
    text += words[i].toString(16);
  }
  if (bestStart >= 0 && bestStart + bestLen === 8) text += ':';
  return text;
}

const IPV4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** CTDB's ip_from_string(): the parser behind the nodes file, public_addresses and `ctdb` arguments. */
export function parseCtdbAddress(text: string): InetAddress | undefined {
  const lastColon = text.lastIndexOf(':');
  if (lastColon < 0) {
    const v4 = parseIPv4(text);
    return v4 && { family: 4, address: formatIPv4(v4), bytes: v4 };
  }
  // CTDB copies into a 64-byte buffer first.
  if (text.length >= 64) return undefined;
  const unbracketed = text.length >= 2 && text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const v6 = parseIPv6(unbracketed);
  if (v6 === undefined) return undefined;
  if (IPV4_MAPPED_PREFIX.every((b, i) => v6[i] === b)) {
    // CTDB re-parses the text after the last ':' as IPv4, so "::ffff:102:304" is rejected.
    const v4 = parseIPv4(unbracketed.slice(unbracketed.lastIndexOf(':') + 1));
    return v4 && { family: 4, address: formatIPv4(v4), bytes: v4 };
  }
  return { family: 6, address: formatIPv6(v6), bytes: v6 };
}

/** inet_pton() for either family, without CTDB's extras (used for `[cluster] node address`). */
export function isInetPtonAddress(text: string): boolean {
  return parseIPv4(text) !== undefined || parseIPv6(text) !== undefined;
}
