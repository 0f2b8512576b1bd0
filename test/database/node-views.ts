// One clustered database opened on every node of a test cluster, as smbd opens it: a client of
// the node's daemon (attach, path, open flags) and the node's file itself.
import { afterAll, beforeAll } from 'vitest';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, Pnn } from '../../src/protocol';
import { TdbFile } from '../../src/store';
import type { TestCluster } from '../harness/cluster';

export interface NodeView {
  client: CtdbClient;
  file: TdbFile;
}

export async function openOnEveryNode(cluster: TestCluster, name: string): Promise<{ dbId: number; views: NodeView[] }> {
  const views: NodeView[] = [];
  let dbId = 0;
  for (const node of cluster.nodes) {
    const client = await CtdbClient.connect(node.socket);
    dbId = (await client.call(Pnn.CURRENT_NODE, ControlCode.DB_ATTACH, name)).reply;
    const path = (await client.call(Pnn.CURRENT_NODE, ControlCode.GETDBPATH, dbId)).reply;
    const flags = (await client.call(Pnn.CURRENT_NODE, ControlCode.DB_OPEN_FLAGS, dbId)).reply;
    if (path === null) throw new Error(`node ${node.pnn}: no path for ${name}`);
    views.push({ client, file: TdbFile.open(path, { flags, access: 'rw' }) });
  }
  return { dbId, views };
}

export function closeNodeViews(views: readonly NodeView[]): void {
  for (const v of views) {
    v.client.close();
    v.file.close();
  }
}

/**
 * For a describe block: the database opened on every node once the cluster is healthy (in
 * beforeAll), closed in afterAll. Returns an accessor for the tests.
 */
export function useNodeViews(cluster: () => TestCluster, name: string): () => { dbId: number; views: NodeView[] } {
  let opened: { dbId: number; views: NodeView[] } | undefined;
  beforeAll(async () => {
    await cluster().waitUntilHealthy();
    opened = await openOnEveryNode(cluster(), name);
  }, 120_000);
  afterAll(() => closeNodeViews(opened?.views ?? []));
  return () => {
    if (opened === undefined) throw new Error(`useNodeViews: ${name} is not open (used outside a test?)`);
    return opened;
  };
}
