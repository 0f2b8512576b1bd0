// The nodes file ($CTDB_BASE/nodes), read as CTDB 4.17's ctdb_read_nodes_file() does:
// one address per line; spaces and tabs around it are ignored; blank lines are skipped and do
// not use up a PNN; a line starting with '#' is a deleted node (it keeps its PNN, address 0.0.0.0);
// a carriage return ends the line. Every node must use the identical file.
import fs from 'node:fs';
import { ConfigError } from './config-error';
import { type InetFamily, parseCtdbAddress } from './inet';
import { fileLines } from './file-lines';

export interface NodeEntry {
  pnn: number;
  /** Canonical address text (0.0.0.0 for a deleted node). */
  address: string;
  family: InetFamily;
  deleted: boolean;
}

export function parseNodesFile(text: string, file: string): NodeEntry[] {
  const nodes: NodeEntry[] = [];
  for (const { text: raw, line } of fileLines(text)) {
    const entry = raw.replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
    if (entry.length === 0) continue;
    const pnn = nodes.length;
    if (entry.startsWith('#')) {
      nodes.push({ pnn, address: '0.0.0.0', family: 4, deleted: true });
      continue;
    }
    const parsed = parseCtdbAddress(entry);
    if (parsed === undefined) throw new ConfigError(file, line, undefined, `invalid node address "${entry}"`);
    nodes.push({ pnn, address: parsed.address, family: parsed.family, deleted: false });
  }
  return nodes;
}

export function loadNodesFile(path: string): NodeEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, undefined, undefined, `cannot read nodes file: ${(err as Error).message}`);
  }
  return parseNodesFile(text, path);
}
