// ctdbd 4.17's command line, as its popt table defines it: -i/--interactive plus popt's
// automatic help options. Parsing follows popt's rules so that scripts see the same outcome
// (output stream, text and exit status) as with the C daemon.

export type CommandLine =
  | { action: 'run'; interactive: boolean }
  | { action: 'print'; stream: 'stdout' | 'stderr'; text: string; exitCode: number };

interface OptionSpec {
  long: string;
  short?: string;
  description: string;
  /** Help options act as soon as popt meets them, before later arguments are looked at. */
  immediate?: () => CommandLine;
  /** Group heading in --help; options without one are listed first. */
  group?: string;
}

const OPTIONS: readonly OptionSpec[] = [
  // popt's autohelp table comes first in ctdbd's option array: --usage lists it first.
  { long: 'help', short: '?', description: 'Show this help message', group: 'Help options:', immediate: () => printHelp(0) },
  { long: 'usage', description: 'Display brief usage message', group: 'Help options:', immediate: () => print('stdout', `${usageLine()}\n`, 0) },
  { long: 'interactive', short: 'i', description: "don't fork, log to stderr" },
];

function print(stream: 'stdout' | 'stderr', text: string, exitCode: number): CommandLine {
  return { action: 'print', stream, text, exitCode };
}

function invalid(arg: string, reason: string): CommandLine {
  return print('stderr', `Invalid option ${arg}: ${reason}\n`, 1);
}

function optionLabel(option: OptionSpec): string {
  return option.short ? `-${option.short}, --${option.long}` : `    --${option.long}`;
}

function helpText(): string {
  const width = Math.max(...OPTIONS.map((o) => optionLabel(o).length)) + 5;
  const line = (o: OptionSpec): string => `  ${optionLabel(o).padEnd(width)}${o.description}\n`;
  const groups = [undefined, ...new Set(OPTIONS.flatMap((o) => (o.group === undefined ? [] : [o.group])))];
  const sections = groups.map((group) => (group ? `${group}\n` : '') + OPTIONS.filter((o) => o.group === group).map(line).join(''));
  // popt's program name is empty for ctdbd (it keeps argv[0] as an argument).
  return `Usage: [OPTION...]\n${sections.join('\n')}`;
}

function usageLine(): string {
  const shorts = OPTIONS.map((o) => o.short ?? '').join('');
  const each = OPTIONS.map((o) => (o.short ? `[-${o.short}|--${o.long}]` : `[--${o.long}]`));
  return `Usage: [-${shorts}] ${each.join(' ')}`;
}

function printHelp(exitCode: number): CommandLine {
  return print('stdout', helpText(), exitCode);
}

/** Interprets the arguments after the program name. */
export function parseCommandLine(args: readonly string[]): CommandLine {
  let interactive = false;
  const positional: string[] = [];
  // Returns a final outcome, or undefined when parsing goes on.
  const apply = (option: OptionSpec): CommandLine | undefined => {
    if (option.immediate) return option.immediate();
    interactive = true;
    return undefined;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      const option = OPTIONS.find((o) => o.long === name);
      if (option === undefined) return invalid(arg, 'unknown option');
      if (eq !== -1) return invalid(arg, 'option does not take an argument');
      const outcome = apply(option);
      if (outcome) return outcome;
    } else if (arg.startsWith('-') && arg.length > 1) {
      // A cluster of short options, e.g. -i?; none of ctdbd's takes a value.
      for (let c = 1; c < arg.length; c++) {
        const option = OPTIONS.find((o) => o.short === arg[c]);
        if (option === undefined) return invalid(arg, 'unknown option');
        if (arg[c + 1] === '=') return invalid(arg, 'option does not take an argument');
        const outcome = apply(option);
        if (outcome) return outcome;
      }
    } else {
      positional.push(arg);
    }
  }
  // ctdbd takes no arguments: any left over gets the help text and a failure status.
  if (positional.length > 0) return printHelp(1);
  return { action: 'run', interactive };
}
