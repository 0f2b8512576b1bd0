// $CTDB_BASE/public_addresses as ctdbd 4.17 reads it (ctdb_set_public_addresses()):
// "IP/maskbits iface[,iface…]" per line, fields separated by spaces/tabs, anything after the
// interface list ignored; blank lines and lines starting with '#' skipped. The mask is not
// range-checked by CTDB (the event scripts fail later instead), so it is not checked here either.
// A missing file means "no public addresses". Duplicate addresses are fatal, as in ctdbd.
// Note: ctdbd keeps these in a list that it prepends to, i.e. in reverse file order.
import fs from 'node:fs';
import { parseFullUnsigned } from './c-number';
import { ConfigError } from './config-error';
import { fileLines } from './file-lines';
import { type InetFamily, parseCtdbAddress } from './inet';

export interface PublicAddress {
  /** Canonical address text. */
  address: string;
  family: InetFamily;
  maskBits: number;
  interfaces: string[];
  /** Line in the file, for later error messages. */
  line: number;
}

/** ctdb_sock_addr_mask_from_string(): "addr/bits" with a decimal, unsigned, fully-consumed mask. */
function parseAddressWithMask(text: string): { address: string; family: InetFamily; maskBits: number } | undefined {
  if (text.length >= 64) return undefined;
  const slash = text.lastIndexOf('/');
  if (slash < 0) return undefined;
  const mask = parseFullUnsigned(text.slice(slash + 1), 10);
  if (mask === undefined) return undefined;
  const ip = parseCtdbAddress(text.slice(0, slash));
  return ip && { address: ip.address, family: ip.family, maskBits: Number(mask & 0xffffffffn) };
}

export function parsePublicAddresses(text: string, file: string): PublicAddress[] {
  const addresses: PublicAddress[] = [];
  for (const { text: raw, line } of fileLines(text)) {
    const content = raw.replace(/^[ \t]+/, '');
    if (content.length === 0 || content.startsWith('#')) continue;
    const [addressText, interfaceList] = content.split(/[ \t]+/).filter((field) => field.length > 0);
    if (interfaceList === undefined) throw new ConfigError(file, line, undefined, `no interface specified for "${addressText}"`);
    const parsed = parseAddressWithMask(addressText);
    if (parsed === undefined) throw new ConfigError(file, line, undefined, `badly formed public address "${addressText}" (expected IP/maskbits)`);
    if (addresses.some((a) => a.address === parsed.address && a.family === parsed.family)) {
      throw new ConfigError(file, line, undefined, `duplicate public IP address ${parsed.address}`);
    }
    addresses.push({ ...parsed, interfaces: interfaceList.split(',').filter((name) => name.length > 0), line });
  }
  return addresses;
}

/** Returns undefined when the file does not exist (ctdbd then runs without public addresses). */
export function loadPublicAddresses(path: string): PublicAddress[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(path, undefined, undefined, `cannot read public addresses: ${(err as Error).message}`);
  }
  return parsePublicAddresses(text, path);
}
