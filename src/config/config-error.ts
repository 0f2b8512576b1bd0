/** A configuration file problem, located precisely enough for an operator to fix it. */
export class ConfigError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  readonly option: string | undefined;
  /** Every problem when several were found together (CTDB reports them all, not just the first). */
  readonly problems: readonly ConfigError[];

  constructor(file: string, line: number | undefined, option: string | undefined, reason: string, problems?: readonly ConfigError[]) {
    const where = line === undefined ? file : `${file}:${line}`;
    super(
      problems !== undefined
        ? problems.map((p) => p.message).join('\n')
        : option === undefined
          ? `${where}: ${reason}`
          : `${where}: ${option}: ${reason}`,
    );
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
    this.option = option;
    this.problems = problems ?? [this];
  }

  /** One error for several problems: located at the first, its message lists them all. */
  static combine(problems: readonly ConfigError[]): ConfigError {
    const [first] = problems;
    return problems.length === 1 ? first : new ConfigError(first.file, first.line, first.option, '', problems);
  }
}
