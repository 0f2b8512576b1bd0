// ctdb.conf as CTDB 4.17 reads it (common/conf.c + the *_conf.c option definitions).
// Outcomes, checked against the real ctdbd and ctdb-config on Debian 12:
// - missing file: defaults;
// - unknown section or option: ignored by ctdbd (and `ctdb-config dump`); an error only in
//   strict mode (`ctdb-config validate`);
// - empty, unparsable or rejected value: fatal, ctdbd refuses to start (all problems are listed);
// - malformed line ("[x" without ']', "= v"): the WHOLE file is silently replaced by defaults and
//   ctdbd starts; we do the same but report it through `warn`;
// - section names are case-insensitive, option names are case-sensitive;
// - ctdbd's default log level is NOTICE, while `ctdb-config` reports ERROR;
// - the database directory defaults stay /var/lib/ctdb/* even in test mode.
import fs from 'node:fs';
import { parseDebugLevel, validateLogLocation } from '../common/logging';
import { parseConfInteger } from './c-number';
import { ConfigError } from './config-error';
import { isInetPtonAddress } from './inet';
import { COMPILED_DIRS, type CtdbPaths } from './paths';
import { parseTini } from './tini';

export interface CtdbConfig {
  logging: { location: string; level: string };
  cluster: {
    transport: string;
    nodeAddress: string | null;
    /** `cluster lock`, or the deprecated `recovery lock` when only that is set. */
    clusterLock: string | null;
    leaderTimeout: number;
    leaderCapability: boolean;
  };
  database: {
    volatileDbDir: string;
    persistentDbDir: string;
    stateDbDir: string;
    lockDebugScript: string | null;
    tdbMutexes: boolean;
  };
  event: { debugScript: string | null };
  failover: { disabled: boolean };
  legacy: {
    realtimeScheduling: boolean;
    lmasterCapability: boolean;
    startAsStopped: boolean;
    startAsDisabled: boolean;
    scriptLogLevel: string;
  };
}

type SectionName = keyof CtdbConfig;
type ConfValue = string | number | boolean | null;

interface ValidateContext {
  etcDir: string;
  warn: (message: string) => void;
}

/**
 * Returns why a value is rejected, or undefined when it is accepted. Each validator receives the
 * type its OptionSpec declares; `never` lets the table hold validators of different value types.
 */
type Validator = (value: never, context: ValidateContext) => string | undefined;

interface OptionSpec {
  section: SectionName;
  name: string;
  /** Property in CtdbConfig[section]; `recoveryLock` only feeds cluster.clusterLock. */
  field: string;
  type: 'string' | 'integer' | 'boolean';
  default: ConfValue;
  validate?: Validator;
}

export const CTDBD_DEFAULT_LOG_LEVEL = 'NOTICE';
/** `ctdb-config` (the conf tool) defines the log level default as ERROR. */
export const CONF_TOOL_DEFAULT_LOG_LEVEL = 'ERROR';

/** POSIX basename(3), which CTDB applies to debug script names ("/x/s.sh/" -> "s.sh", "/" -> "/"). */
function posixBasename(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed.length === 0) return p.length > 0 ? '/' : '.';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

const PATH_MAX = 4096;

/** Debug scripts must be executable regular files in the etc dir (only their basename counts). */
function debugScriptValidator(what: string): Validator {
  return (script: string, { etcDir }) => {
    if (Buffer.byteLength(script) >= PATH_MAX) return `${what} name too long`;
    const scriptPath = `${etcDir}/${posixBasename(script)}`;
    if (Buffer.byteLength(scriptPath) >= PATH_MAX) return `${what} path too long`;
    let stat: fs.Stats;
    try {
      stat = fs.statSync(scriptPath);
    } catch {
      return `${what} ${scriptPath} does not exist`;
    }
    if (!stat.isFile()) return `${what} ${scriptPath} is not a file`;
    if ((stat.mode & 0o100) === 0) return `${what} ${scriptPath} is not executable`;
    return undefined;
  };
}

function directoryValidator(option: string): Validator {
  return (dir: string) => {
    try {
      if (fs.statSync(dir).isDirectory()) return undefined;
    } catch {
      // reported below
    }
    return `${option} "${dir}" does not exist`;
  };
}

const logLevelValidator: Validator = (level: string) =>
  parseDebugLevel(level) === undefined ? `invalid log level "${level}"` : undefined;

/** Every ctdb.conf option of CTDB 4.17, in `ctdb-config dump` order. */
const OPTIONS: readonly OptionSpec[] = [
  {
    section: 'logging',
    name: 'location',
    field: 'location',
    type: 'string',
    default: `file:${COMPILED_DIRS.log}/log.ctdb`,
    validate: (location: string) => (validateLogLocation(location) ? undefined : `invalid logging location "${location}"`),
  },
  { section: 'logging', name: 'log level', field: 'level', type: 'string', default: CTDBD_DEFAULT_LOG_LEVEL, validate: logLevelValidator },
  {
    section: 'cluster',
    name: 'transport',
    field: 'transport',
    type: 'string',
    default: 'tcp',
    validate: (transport: string) => (transport === 'tcp' ? undefined : `Invalid value for [cluster] -> transport = ${transport}`),
  },
  {
    section: 'cluster',
    name: 'node address',
    field: 'nodeAddress',
    type: 'string',
    default: null,
    validate: (address: string) =>
      isInetPtonAddress(address) ? undefined : `Invalid value for [cluster] -> node address = ${address}`,
  },
  { section: 'cluster', name: 'cluster lock', field: 'clusterLock', type: 'string', default: null },
  {
    section: 'cluster',
    name: 'recovery lock',
    field: 'recoveryLock',
    type: 'string',
    default: null,
    validate: (_lock: string, { warn }) => {
      warn('Configuration option [cluster] -> recovery lock is deprecated');
      return undefined;
    },
  },
  {
    section: 'cluster',
    name: 'leader timeout',
    field: 'leaderTimeout',
    type: 'integer',
    default: 5,
    validate: (timeout: number) => (timeout > 0 ? undefined : `Invalid value for [cluster] -> leader timeout = ${timeout}`),
  },
  { section: 'cluster', name: 'leader capability', field: 'leaderCapability', type: 'boolean', default: true },
  {
    section: 'database',
    name: 'volatile database directory',
    field: 'volatileDbDir',
    type: 'string',
    default: `${COMPILED_DIRS.var}/volatile`,
    validate: directoryValidator('volatile database directory'),
  },
  {
    section: 'database',
    name: 'persistent database directory',
    field: 'persistentDbDir',
    type: 'string',
    default: `${COMPILED_DIRS.var}/persistent`,
    validate: directoryValidator('persistent database directory'),
  },
  {
    section: 'database',
    name: 'state database directory',
    field: 'stateDbDir',
    type: 'string',
    default: `${COMPILED_DIRS.var}/state`,
    validate: directoryValidator('state database directory'),
  },
  {
    section: 'database',
    name: 'lock debug script',
    field: 'lockDebugScript',
    type: 'string',
    default: null,
    validate: debugScriptValidator('lock debug script'),
  },
  { section: 'database', name: 'tdb mutexes', field: 'tdbMutexes', type: 'boolean', default: true },
  { section: 'event', name: 'debug script', field: 'debugScript', type: 'string', default: null, validate: debugScriptValidator('debug script') },
  { section: 'failover', name: 'disabled', field: 'disabled', type: 'boolean', default: false },
  { section: 'legacy', name: 'realtime scheduling', field: 'realtimeScheduling', type: 'boolean', default: true },
  { section: 'legacy', name: 'lmaster capability', field: 'lmasterCapability', type: 'boolean', default: true },
  { section: 'legacy', name: 'start as stopped', field: 'startAsStopped', type: 'boolean', default: false },
  { section: 'legacy', name: 'start as disabled', field: 'startAsDisabled', type: 'boolean', default: false },
  { section: 'legacy', name: 'script log level', field: 'scriptLogLevel', type: 'string', default: 'ERROR', validate: logLevelValidator },
];

const SECTIONS: readonly SectionName[] = ['logging', 'cluster', 'database', 'event', 'failover', 'legacy'];

/** conf.c's string-to-value conversion; undefined means "invalid value". */
function convertValue(type: OptionSpec['type'], text: string): ConfValue | undefined {
  if (type === 'string') return text;
  if (type === 'integer') return parseConfInteger(text);
  const lower = text.toLowerCase();
  if (lower === 'true' || lower === 'yes') return true;
  if (lower === 'false' || lower === 'no') return false;
  return undefined;
}

export interface ConfOptionState {
  section: SectionName;
  name: string;
  type: OptionSpec['type'];
  value: ConfValue;
  /** True unless the file set a value different from the default (dump comments these out). */
  isDefault: boolean;
}

export interface ParsedCtdbConf {
  config: CtdbConfig;
  /** Every option in dump order, with its effective value. */
  options: ConfOptionState[];
}

export interface CtdbConfOptions {
  /** Directory holding debug scripts (CtdbPaths.etcDir). */
  etcDir: string;
  /** ctdbd uses NOTICE (the default here); ctdb-config uses ERROR. */
  defaultLogLevel?: string;
  /** `ctdb-config validate` semantics: unknown sections and options are errors. */
  strict?: boolean;
  /** Non-fatal findings: deprecated options, ignored unknowns, a malformed file replaced by defaults. */
  warn?: (message: string) => void;
}

function specDefault(spec: OptionSpec, options: CtdbConfOptions): ConfValue {
  return spec.section === 'logging' && spec.name === 'log level' ? (options.defaultLogLevel ?? spec.default) : spec.default;
}

function buildConfig(values: ReadonlyMap<OptionSpec, ConfValue>): CtdbConfig {
  const sections: Record<string, Record<string, ConfValue>> = Object.fromEntries(SECTIONS.map((s) => [s, {}]));
  for (const [spec, value] of values) sections[spec.section][spec.field] = value;
  const { recoveryLock, ...cluster } = sections.cluster;
  cluster.clusterLock ??= recoveryLock;
  sections.cluster = cluster;
  return sections as unknown as CtdbConfig;
}

/** Parses ctdb.conf text; throws ConfigError listing every fatal problem. */
export function parseCtdbConf(text: string, file: string, options: CtdbConfOptions): ParsedCtdbConf {
  const warn = options.warn ?? (() => {});
  const context: ValidateContext = { etcDir: options.etcDir, warn };
  const defaults = new Map(OPTIONS.map((spec) => [spec, specDefault(spec, options)]));
  const assigned = new Map<OptionSpec, ConfValue>();
  const problems: ConfigError[] = [];
  const unknown = (line: number, what: string): void => {
    if (options.strict) problems.push(new ConfigError(file, line, undefined, what));
    else warn(`${file}:${line}: ignoring ${what}`);
  };

  const parsed = parseTini(text, { allowEmptyValue: false });
  let section: SectionName | undefined;
  let sectionName = '';
  for (const entry of parsed.entries) {
    if (entry.kind === 'section') {
      sectionName = entry.name;
      section = SECTIONS.find((s) => s.toLowerCase() === entry.name.toLowerCase());
      if (section === undefined) unknown(entry.line, `unknown section [${entry.name}]`);
      continue;
    }
    if (section === undefined) {
      unknown(entry.line, `option "${entry.name}" outside a known section`);
      continue;
    }
    const spec = OPTIONS.find((o) => o.section === section && o.name === entry.name);
    if (spec === undefined) {
      unknown(entry.line, `unknown option [${sectionName}] -> "${entry.name}"`);
      continue;
    }
    const option = `[${spec.section}] -> ${spec.name}`;
    if (entry.value.length === 0) {
      problems.push(new ConfigError(file, entry.line, option, 'empty value'));
      continue;
    }
    const value = convertValue(spec.type, entry.value);
    if (value === undefined) {
      problems.push(new ConfigError(file, entry.line, option, `invalid ${spec.type} value "${entry.value}"`));
      continue;
    }
    // conf.c compares with the value in force before the load (the default) and then skips
    // validation; so a repeated option set back to its default keeps the earlier value.
    if (value === defaults.get(spec)) continue;
    const rejection = spec.validate?.(value as never, context);
    if (rejection !== undefined) {
      problems.push(new ConfigError(file, entry.line, option, rejection));
      continue;
    }
    assigned.set(spec, value);
  }

  if (problems.length > 0) throw ConfigError.combine(problems);
  if (parsed.syntaxError !== undefined) {
    warn(`${file}:${parsed.syntaxError.line}: ${parsed.syntaxError.reason}; CTDB ignores the whole file and uses defaults`);
    assigned.clear();
  }

  const values = new Map(OPTIONS.map((spec) => [spec, assigned.has(spec) ? (assigned.get(spec) as ConfValue) : defaults.get(spec) as ConfValue]));
  return {
    config: buildConfig(values),
    options: OPTIONS.map((spec) => ({
      section: spec.section,
      name: spec.name,
      type: spec.type,
      value: values.get(spec) as ConfValue,
      isDefault: !assigned.has(spec),
    })),
  };
}

/** Reads <etc>/ctdb.conf (optional) with ctdbd's semantics. */
export function loadCtdbConfig(paths: CtdbPaths, options: Omit<CtdbConfOptions, 'etcDir'> = {}): CtdbConfig {
  let text: string;
  try {
    text = fs.readFileSync(paths.configFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError(paths.configFile, undefined, undefined, `cannot read: ${(err as Error).message}`);
    }
    text = '';
  }
  return parseCtdbConf(text, paths.configFile, { ...options, etcDir: paths.etcDir }).config;
}

/** The text `ctdb-config dump` prints for this configuration. */
export function dumpCtdbConf(parsed: ParsedCtdbConf): string {
  let out = '';
  for (const section of SECTIONS) {
    out += `[${section}]\n`;
    for (const option of parsed.options.filter((o) => o.section === section)) {
      const commented = option.isDefault || option.value === null;
      out += `\t${commented ? '# ' : ''}${option.name} = ${option.value ?? ''}\n`;
    }
  }
  return out;
}
