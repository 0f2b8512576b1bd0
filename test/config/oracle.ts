// Helpers that run the real Debian CTDB 4.17 tools as oracles, in a private CTDB_BASE.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export interface ToolResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A fresh directory; the caller removes it. */
export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A directory that exists for the whole describe/file and is removed afterwards, also on failure. */
export function useTempDir(prefix: string): () => string {
  let dir: string | undefined;
  beforeAll(() => {
    dir = makeTempDir(prefix);
  });
  afterAll(() => {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (dir === undefined) throw new Error('temporary directory used outside a test');
    return dir;
  };
}

export function testModeEnv(base: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, CTDB_TEST_MODE: '1', CTDB_BASE: base };
}

export function runCtdbConfig(base: string, ...args: string[]): ToolResult {
  const result = spawnSync('/usr/libexec/ctdb/ctdb-config', args, { env: testModeEnv(base), encoding: 'utf8', timeout: 10_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A ctdbd file-log line: "2026-11-21T15:01:02.123456+00:00 host ctdbd[123]: message". */
export const FILE_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d) (\S+) (\S+)\[(\d+)\]: (.*)$/;
