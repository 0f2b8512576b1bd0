// This node's ban: BANNED is set for a number of seconds and cleared by a timer
// (monotonic: a wall-clock jump neither shortens nor extends it).
export class BanTimer {
  #timer: NodeJS.Timeout | null = null;
  #seconds = 0;

  constructor(
    private readonly apply: (banned: boolean, seconds: number) => void,
    private readonly bansEnabled: () => boolean,
  ) {}

  /** Seconds of the current ban, 0 when not banned. */
  get seconds(): number {
    return this.#seconds;
  }

  /** Bans for `seconds` (restarting any running ban), or unbans when 0. */
  set(seconds: number): void {
    this.#clearTimer();
    if (seconds === 0) {
      this.#seconds = 0;
      this.apply(false, 0);
      return;
    }
    if (!this.bansEnabled()) return;
    this.#seconds = seconds;
    this.apply(true, seconds);
    this.#timer = setTimeout(() => this.set(0), seconds * 1000);
  }

  stop(): void {
    this.#clearTimer();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
