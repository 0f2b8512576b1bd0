// An operation (recoveries, takeover runs) that can be disabled for a while, e.g. by
// `ctdb reloadnodes` or after a recovery, and that knows whether it is running.
// Timed on the monotonic clock.
export class OperationGate {
  #inProgress = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(readonly name: string) {}

  get disabled(): boolean {
    return this.#timer !== null;
  }

  get inProgress(): boolean {
    return this.#inProgress;
  }

  /** Marks the operation running; false when it is disabled. */
  begin(): boolean {
    if (this.disabled) return false;
    this.#inProgress = true;
    return true;
  }

  end(): void {
    this.#inProgress = false;
  }

  /** Disables for `seconds` (0 re-enables); false while the operation is running. */
  disable(seconds: number): boolean {
    if (seconds === 0) {
      this.enable();
      return true;
    }
    if (this.#inProgress) return false;
    this.enable();
    this.#timer = setTimeout(() => (this.#timer = null), seconds * 1000);
    return true;
  }

  enable(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
