// CTDB 4.17 logging (ctdb/common/logging.c + lib/util/debug.c), reproduced for drop-in use:
// - levels 0..10 with the names ERROR=0 WARNING=1 NOTICE=3 INFO=5 DEBUG=10; a message is written
//   when its level <= the configured level;
// - "file:PATH" appends "<rfc5424 time> <host> <prog>[<pid>]: <msg>" lines (host is basename of
//   CTDB_BASE in test mode); "file:" / "file:-" (and ctdbd -i) write the bare message to stderr;
// - "syslog" (glibc syslog format via /dev/log), "syslog:nonblocking" (/dev/log),
//   "syslog:udp" (RFC3164 to 127.0.0.1:514), "syslog:udp-rfc5424" (RFC5424 to 127.0.0.1:514).
//
// File writes are one synchronous append per message, as ctdbd does: a page-cache append costs a few
// microseconds, keeps lines ordered and whole even if the process dies, and needs no buffer to bound.
// Node cannot send AF_UNIX datagrams, so /dev/log is reached through one long-lived `logger`
// child reading priority-prefixed lines from a pipe (asynchronous writes, never blocking).
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const DEBUG_ERR = 0;
export const DEBUG_WARNING = 1;
export const DEBUG_NOTICE = 3;
export const DEBUG_INFO = 5;
export const DEBUG_DEBUG = 10;

/** Name of each numeric level 0..10, in CTDB's lookup order (first match wins when parsing). */
const LEVEL_NAMES = ['ERROR', 'WARNING', 'WARNING', 'NOTICE', 'NOTICE', 'INFO', 'INFO', 'INFO', 'INFO', 'INFO', 'DEBUG'];

/**
 * CTDB's debug_level_parse(): a leading digit means atoi() (0..10); otherwise the text may be any
 * case-insensitive prefix of a level name ("w", "Noti"; even "" means ERROR).
 */
export function parseDebugLevel(text: string): number | undefined {
  if (/^[0-9]/.test(text)) {
    const level = parseInt(text, 10);
    return level < LEVEL_NAMES.length ? level : undefined;
  }
  const wanted = text.toUpperCase();
  const index = LEVEL_NAMES.findIndex((name) => name.startsWith(wanted));
  return index < 0 ? undefined : index;
}

/** CTDB's debug_level_to_string(). */
export function debugLevelName(level: number): string {
  return LEVEL_NAMES[level] ?? 'UNKNOWN';
}

const LOG_DAEMON = 3 << 3;

/** Syslog severity for a debug level (the table copied in logging.c). */
function syslogSeverity(level: number): number {
  if (level === 0) return 3;
  if (level === 1) return 4;
  if (level >= 2 && level <= 5) return 5;
  if (level >= 6 && level <= 9) return 6;
  return 7;
}

type Backend = 'file' | 'syslog';

interface ParsedLocation {
  backend: Backend;
  option: string | undefined;
}

/** log_backend_parse(): strtok(":") semantics, so empty fields vanish and a third field is ignored. */
function parseLocation(location: string): ParsedLocation | undefined {
  const [name, option] = location.split(':').filter((field) => field.length > 0);
  if (name !== 'file' && name !== 'syslog') return undefined;
  return { backend: name, option };
}

const SYSLOG_METHODS = new Set(['nonblocking', 'udp', 'udp-rfc5424']);

/** logging_validate(): what `[logging] location` accepts. */
export function validateLogLocation(location: string): boolean {
  const parsed = parseLocation(location);
  if (parsed === undefined) return false;
  if (parsed.backend === 'syslog') return parsed.option === undefined || SYSLOG_METHODS.has(parsed.option);
  if (parsed.option === undefined || parsed.option === '-') return true;
  try {
    return fs.statSync(path.dirname(parsed.option)).isDirectory();
  } catch {
    return false;
  }
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * Samba's timeval_str_buf(rfc5424, hires): local time with microseconds and a UTC offset computed
 * from hour/minute differences only (so it is wrong across midnight, exactly like Samba's).
 */
export function formatRfc5424Time(epochMicros: bigint): string {
  const seconds = Number(epochMicros / 1_000_000n);
  const micros = Number(epochMicros % 1_000_000n);
  const t = new Date(seconds * 1000);
  const offset = (t.getHours() - t.getUTCHours()) * 60 + (t.getMinutes() - t.getUTCMinutes());
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return (
    `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}` +
    `T${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(micros, 6)}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

function nowMicros(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
}

/** Host name in file log lines: local daemons in test mode are told apart by their CTDB_BASE. */
function logHostname(env: NodeJS.ProcessEnv): string {
  const base = env.CTDB_BASE;
  if (env.CTDB_TEST_MODE === undefined || base === undefined) return os.hostname();
  const slash = base.lastIndexOf('/');
  if (slash < 0) return base;
  return slash === base.length - 1 ? 'unknown' : base.slice(slash + 1);
}

/** Who is speaking: CTDB prefixes every line with the program name and its pid. */
export interface LogSource {
  program: string;
  pid: number;
}

interface LogSink {
  write(level: number, source: LogSource, message: string): void;
  reopen(): void;
  close(): void;
}

const stripNewline = (message: string): string => (message.endsWith('\n') ? message.slice(0, -1) : message);

class StderrSink implements LogSink {
  write(_level: number, _source: LogSource, message: string): void {
    fs.writeSync(2, `${stripNewline(message)}\n`);
  }
  reopen(): void {}
  close(): void {}
}

class FileSink implements LogSink {
  #fd: number;
  readonly #file: string;
  readonly #hostname: string;

  constructor(file: string, hostname: string) {
    this.#file = file;
    this.#hostname = hostname;
    this.#fd = FileSink.#open(file);
  }

  static #open(file: string): number {
    try {
      return fs.openSync(file, 'a', 0o644);
    } catch (err) {
      throw new Error(`cannot open log file ${file}: ${(err as Error).message}`);
    }
  }

  write(_level: number, source: LogSource, message: string): void {
    const line = `${formatRfc5424Time(nowMicros())} ${this.#hostname} ${source.program}[${source.pid}]: ${stripNewline(message)}\n`;
    fs.writeSync(this.#fd, line);
  }

  /** Opens the new file before closing the old one, so a failed reopen keeps logging (as Samba does). */
  reopen(): void {
    const fresh = FileSink.#open(this.#file);
    fs.closeSync(this.#fd);
    this.#fd = fresh;
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}

/** /dev/log through util-linux `logger`; "<pri>" prefixes carry each message's priority. */
class DevLogSink implements LogSink {
  #child: ChildProcess | undefined;

  constructor(source: LogSource, socketPath: string) {
    this.#child = DevLogSink.#start(source, socketPath);
  }

  static #start(source: LogSource, socketPath: string): ChildProcess {
    const child = spawn(
      'logger',
      ['--prio-prefix', '-t', source.program, `--id=${source.pid}`, '-u', socketPath, '--socket-errors=off'],
      { stdio: ['pipe', 'ignore', 'ignore'] },
    );
    // A missing `logger` or a dead pipe must not take the daemon down; messages are then lost.
    child.on('error', () => {});
    child.stdin?.on('error', () => {});
    child.unref();
    if (child.stdin instanceof net.Socket) child.stdin.unref();
    return child;
  }

  write(level: number, _source: LogSource, message: string): void {
    const priority = LOG_DAEMON | syslogSeverity(level);
    const lines = stripNewline(message)
      .split('\n')
      .map((text) => `<${priority}>${text}\n`);
    this.#child?.stdin?.write(lines.join(''));
  }

  reopen(): void {}

  close(): void {
    this.#child?.stdin?.end();
    this.#child = undefined;
  }
}

const SYSLOG_PORT = 514;
/** RFC3164 caps a packet at 1024 bytes; CTDB formats into a 1024-byte buffer (1023 + NUL). */
const SYSLOG_MAX_PACKET = 1023;

/**
 * syslog:udp / syslog:udp-rfc5424 — CTDB's own formats, sent to the local syslog daemon. Node queues
 * datagrams instead of failing with EAGAIN, so CTDB's "[Dropped N log messages]" never applies.
 */
class UdpSyslogSink implements LogSink {
  readonly #socket: dgram.Socket;
  readonly #rfc5424: boolean;
  readonly #hostname: string;

  constructor(rfc5424: boolean) {
    this.#rfc5424 = rfc5424;
    this.#hostname = os.hostname().split('.')[0] || 'localhost';
    this.#socket = dgram.createSocket('udp4');
    // Like CTDB, a syslog daemon that is not listening loses messages silently.
    this.#socket.on('error', () => {});
    this.#socket.unref();
  }

  write(level: number, source: LogSource, message: string): void {
    const priority = LOG_DAEMON | syslogSeverity(level);
    const header = this.#rfc5424
      ? `<${priority}>1 ${formatRfc5424Time(nowMicros())} ${this.#hostname} ${source.program} ${source.pid} - - `
      : `<${priority}>${source.program}[${source.pid}]: `;
    const packet = Buffer.from(header + stripNewline(message));
    this.#socket.send(packet.subarray(0, SYSLOG_MAX_PACKET), SYSLOG_PORT, '127.0.0.1', () => {});
  }

  reopen(): void {}

  close(): void {
    this.#socket.close();
  }
}

export interface LoggerOptions {
  /** `[logging] location`: file:PATH, file:, syslog, syslog:nonblocking|udp|udp-rfc5424. */
  location: string;
  /** Level name or number as CTDB parses it. */
  level: string | number;
  program?: string;
  /** ctdbd -i: ignore the location and write bare messages to stderr. */
  interactive?: boolean;
  pid?: number;
  /** Environment consulted for the test-mode host name (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
  /** Local syslog socket for "syslog" and "syslog:nonblocking" (tests point it elsewhere). */
  syslogSocket?: string;
}

interface SharedLogState {
  sink: LogSink;
  level: number;
}

export class Logger {
  readonly #shared: SharedLogState;
  readonly #source: LogSource;

  constructor(shared: SharedLogState, source: LogSource) {
    this.#shared = shared;
    this.#source = source;
  }

  get level(): number {
    return this.#shared.level;
  }

  set level(level: number) {
    if (!Number.isInteger(level) || level < 0) throw new RangeError(`invalid debug level ${level}`);
    this.#shared.level = level;
  }

  /** Whether a message at this level would be written (lets callers skip building costly text). */
  enabled(level: number): boolean {
    return level <= this.#shared.level;
  }

  log(level: number, message: string): void {
    if (level <= this.#shared.level) this.#shared.sink.write(level, this.#source, message);
  }

  error(message: string): void {
    this.log(DEBUG_ERR, message);
  }
  warning(message: string): void {
    this.log(DEBUG_WARNING, message);
  }
  notice(message: string): void {
    this.log(DEBUG_NOTICE, message);
  }
  info(message: string): void {
    this.log(DEBUG_INFO, message);
  }
  debug(message: string): void {
    this.log(DEBUG_DEBUG, message);
  }

  /** A logger for another program name/pid (e.g. "ctdb-recoverd") sharing this sink and level. */
  child(program: string, pid: number = this.#source.pid): Logger {
    return new Logger(this.#shared, { program, pid });
  }

  /** SIGHUP handling: reopen a log file (after rotation). */
  reopen(): void {
    this.#shared.sink.reopen();
  }

  close(): void {
    this.#shared.sink.close();
  }
}

function createSink(parsed: ParsedLocation, source: LogSource, options: LoggerOptions): LogSink {
  if (parsed.backend === 'file') {
    if (parsed.option === undefined || parsed.option === '-') return new StderrSink();
    return new FileSink(parsed.option, logHostname(options.env ?? process.env));
  }
  if (parsed.option === undefined || parsed.option === 'nonblocking') return new DevLogSink(source, options.syslogSocket ?? '/dev/log');
  return new UdpSyslogSink(parsed.option === 'udp-rfc5424');
}

export function createLogger(options: LoggerOptions): Logger {
  const location = options.interactive ? 'file:' : options.location;
  const parsed = parseLocation(location);
  if (parsed === undefined || (parsed.backend === 'syslog' && parsed.option !== undefined && !SYSLOG_METHODS.has(parsed.option))) {
    throw new Error(`Invalid logging option '${location}'`);
  }
  const level = typeof options.level === 'number' ? options.level : parseDebugLevel(options.level);
  if (level === undefined || !Number.isInteger(level) || level < 0) {
    throw new Error(`Invalid debug level '${options.level}'`);
  }
  const source = { program: options.program ?? 'ctdbd', pid: options.pid ?? process.pid };
  return new Logger({ sink: createSink(parsed, source, options), level }, source);
}
