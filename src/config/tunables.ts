// CTDB 4.17 tunables (common/tunable.c, protocol.h struct ctdb_tunable_list).
// The table is in wire order: GET_ALL_TUNABLES sends one u32 per entry in exactly this order.
// Obsolete tunables keep their slot, can still be set (SET_TUNABLE then answers 1) and are
// left out of LIST_TUNABLES.
import fs from 'node:fs';
import { parseFullUnsigned } from './c-number';
import { parseTini } from './tini';

export const TUNABLES = [
  { name: 'MaxRedirectCount', default: 3, obsolete: true },
  { name: 'SeqnumInterval', default: 1000, obsolete: false },
  { name: 'ControlTimeout', default: 60, obsolete: false },
  { name: 'TraverseTimeout', default: 20, obsolete: false },
  { name: 'KeepaliveInterval', default: 5, obsolete: false },
  { name: 'KeepaliveLimit', default: 5, obsolete: false },
  { name: 'RecoverTimeout', default: 30, obsolete: false },
  { name: 'RecoverInterval', default: 1, obsolete: false },
  { name: 'ElectionTimeout', default: 3, obsolete: false },
  { name: 'TakeoverTimeout', default: 9, obsolete: false },
  { name: 'MonitorInterval', default: 15, obsolete: false },
  { name: 'TickleUpdateInterval', default: 20, obsolete: false },
  { name: 'EventScriptTimeout', default: 30, obsolete: false },
  { name: 'MonitorTimeoutCount', default: 20, obsolete: false },
  { name: 'EventScriptUnhealthyOnTimeout', default: 0, obsolete: true },
  { name: 'RecoveryGracePeriod', default: 120, obsolete: false },
  { name: 'RecoveryBanPeriod', default: 300, obsolete: false },
  { name: 'DatabaseHashSize', default: 100001, obsolete: false },
  { name: 'DatabaseMaxDead', default: 5, obsolete: false },
  { name: 'RerecoveryTimeout', default: 10, obsolete: false },
  { name: 'EnableBans', default: 1, obsolete: false },
  { name: 'DeterministicIPs', default: 0, obsolete: true },
  { name: 'ReclockPingPeriod', default: 60, obsolete: true },
  { name: 'NoIPFailback', default: 0, obsolete: false },
  { name: 'DisableIPFailover', default: 0, obsolete: true },
  { name: 'VerboseMemoryNames', default: 0, obsolete: false },
  { name: 'RecdPingTimeout', default: 60, obsolete: false },
  { name: 'RecdFailCount', default: 10, obsolete: false },
  { name: 'LogLatencyMs', default: 0, obsolete: false },
  { name: 'RecLockLatencyMs', default: 1000, obsolete: false },
  { name: 'RecoveryDropAllIPs', default: 120, obsolete: false },
  { name: 'VerifyRecoveryLock', default: 1, obsolete: true },
  { name: 'VacuumInterval', default: 10, obsolete: false },
  { name: 'VacuumMaxRunTime', default: 120, obsolete: false },
  { name: 'RepackLimit', default: 10000, obsolete: false },
  { name: 'VacuumLimit', default: 5000, obsolete: true },
  { name: 'MaxQueueDropMsg', default: 1000000, obsolete: false },
  { name: 'AllowUnhealthyDBRead', default: 0, obsolete: false },
  { name: 'StatHistoryInterval', default: 1, obsolete: false },
  { name: 'DeferredAttachTO', default: 120, obsolete: false },
  { name: 'VacuumFastPathCount', default: 60, obsolete: false },
  { name: 'LCP2PublicIPs', default: 1, obsolete: true },
  { name: 'AllowClientDBAttach', default: 1, obsolete: false },
  { name: 'RecoverPDBBySeqNum', default: 1, obsolete: true },
  { name: 'DeferredRebalanceOnNodeAdd', default: 300, obsolete: true },
  { name: 'FetchCollapse', default: 1, obsolete: false },
  { name: 'HopcountMakeSticky', default: 50, obsolete: false },
  { name: 'StickyDuration', default: 600, obsolete: false },
  { name: 'StickyPindown', default: 200, obsolete: false },
  { name: 'NoIPTakeover', default: 0, obsolete: false },
  { name: 'DBRecordCountWarn', default: 100000, obsolete: false },
  { name: 'DBRecordSizeWarn', default: 10000000, obsolete: false },
  { name: 'DBSizeWarn', default: 100000000, obsolete: false },
  { name: 'PullDBPreallocation', default: 10485760, obsolete: false },
  { name: 'NoIPHostOnAllDisabled', default: 1, obsolete: true },
  { name: 'Samba3AvoidDeadlocks', default: 0, obsolete: true },
  { name: 'TDBMutexEnabled', default: 1, obsolete: true },
  { name: 'LockProcessesPerDB', default: 200, obsolete: false },
  { name: 'RecBufferSizeLimit', default: 1000000, obsolete: false },
  { name: 'QueueBufferSize', default: 1024, obsolete: false },
  { name: 'IPAllocAlgorithm', default: 2, obsolete: false },
  { name: 'AllowMixedVersions', default: 0, obsolete: false },
] as const;

export type TunableName = (typeof TUNABLES)[number]['name'];

// CTDB's name table (which LIST_TUNABLES walks) differs from the struct order in two places.
const LIST_ORDER_MOVES: ReadonlyArray<{ name: TunableName; after: TunableName }> = [
  { name: 'LCP2PublicIPs', after: 'DeterministicIPs' },
  { name: 'VacuumFastPathCount', after: 'VacuumLimit' },
];

function nameTableOrder(): TunableName[] {
  const order: TunableName[] = TUNABLES.map((t) => t.name);
  for (const { name, after } of LIST_ORDER_MOVES) {
    order.splice(order.indexOf(name), 1);
    order.splice(order.indexOf(after) + 1, 0, name);
  }
  return order;
}

const LIST_ORDER = nameTableOrder();
const BY_LOWER_NAME = new Map<string, (typeof TUNABLES)[number]>(TUNABLES.map((t) => [t.name.toLowerCase(), t]));
const UINT32_MAX = 0xffffffff;

export type TunableSetResult = 'ok' | 'obsolete' | 'unknown';

function defaultValues(): Record<TunableName, number> {
  return Object.fromEntries(TUNABLES.map((t) => [t.name, t.default])) as Record<TunableName, number>;
}

export class Tunables {
  /** Typed fast access, e.g. `tunables.values.KeepaliveInterval`. */
  readonly values: Record<TunableName, number> = defaultValues();

  /** Case-insensitive, like the GET_TUNABLE control. */
  get(name: string): number | undefined {
    const tunable = BY_LOWER_NAME.get(name.toLowerCase());
    return tunable && this.values[tunable.name];
  }

  /** Case-insensitive, like SET_TUNABLE; obsolete tunables are still stored. */
  set(name: string, value: number): TunableSetResult {
    if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) {
      throw new RangeError(`tunable ${name}: ${value} is not a 32-bit unsigned integer`);
    }
    const tunable = BY_LOWER_NAME.get(name.toLowerCase());
    if (tunable === undefined) return 'unknown';
    this.values[tunable.name] = value;
    return tunable.obsolete ? 'obsolete' : 'ok';
  }

  /** Non-obsolete names in LIST_TUNABLES order (`ctdb listvars` order). */
  listNames(): TunableName[] {
    return LIST_ORDER.filter((name) => !BY_LOWER_NAME.get(name.toLowerCase())?.obsolete);
  }

  /** The 62 u32 values of struct ctdb_tunable_list, in wire order. */
  toWireArray(): number[] {
    return TUNABLES.map((t) => this.values[t.name]);
  }

  resetToDefaults(): void {
    Object.assign(this.values, defaultValues());
  }

  /**
   * <etc>/ctdb.tunables with ctdbd 4.17 semantics: defaults first; a missing file is fine; then
   * "Name=value" lines (tini syntax, no sections). Each bad line is reported through `log` and
   * skipped while the good ones apply; obsolete tunables are applied AND reported; a malformed
   * line stops reading there. Returns false when anything was reported (ctdbd starts regardless).
   * `notice` receives ctdbd's NOTICE-level "Loading tunables from <file>" when the file exists.
   */
  loadFile(path: string, log: (message: string) => void, notice?: (message: string) => void): boolean {
    this.resetToDefaults();
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
      log(`Failed to open ${path}: ${(err as Error).message}`);
      return false;
    }
    notice?.(`Loading tunables from ${path}`);
    let ok = true;
    const report = (line: number, message: string): void => {
      log(`${path}:${line}: ${message}`);
      ok = false;
    };
    const parsed = parseTini(text, { allowEmptyValue: true });
    for (const entry of parsed.entries) {
      if (entry.kind === 'section') {
        report(entry.line, `Invalid line for section [${entry.name}] - sections not supported`);
        continue;
      }
      if (entry.value.length === 0) {
        report(entry.line, `Invalid line containing "${entry.name}"`);
        continue;
      }
      const number = parseFullUnsigned(entry.value, 0);
      if (number === undefined) {
        report(entry.line, `Invalid value "${entry.value}" for tunable "${entry.name}"`);
        continue;
      }
      // CTDB stores the unsigned long into a uint32_t, i.e. modulo 2^32.
      const outcome = this.set(entry.name, Number(number & 0xffffffffn));
      if (outcome === 'unknown') report(entry.line, `Unknown tunable "${entry.name}"`);
      if (outcome === 'obsolete') report(entry.line, `Obsolete tunable "${entry.name}"`);
    }
    if (parsed.syntaxError !== undefined) report(parsed.syntaxError.line, `Syntax error: ${parsed.syntaxError.reason}`);
    return ok;
  }
}
