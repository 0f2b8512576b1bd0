// Culprit credits the leader hands out when a node makes a recovery fail. A node is
// banned once it has 2 × (number of nodes) credits; credits older than
// RecoveryGracePeriod are forgiven, and a successful recovery forgives everyone —
// so a single flaky node is banned, never the healthy nodes around it.
export class BanCredits {
  readonly #credits = new Map<number, { count: number; lastMs: number }>();

  constructor(
    private readonly gracePeriodMs: () => number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(pnn: number, count = 1): void {
    const entry = this.#credits.get(pnn);
    const now = this.now();
    if (entry === undefined) {
      this.#credits.set(pnn, { count, lastMs: now });
      return;
    }
    if (entry.count > 0 && now - entry.lastMs > this.gracePeriodMs()) entry.count = 0;
    entry.count += count;
    entry.lastMs = now;
  }

  count(pnn: number): number {
    return this.#credits.get(pnn)?.count ?? 0;
  }

  /** Nodes that have earned a ban; their credits start again from zero. */
  takeMisbehaving(threshold: number): number[] {
    const culprits: number[] = [];
    for (const [pnn, entry] of this.#credits) {
      if (entry.count < threshold) continue;
      culprits.push(pnn);
      entry.count = 0;
    }
    return culprits;
  }

  reset(): void {
    this.#credits.clear();
  }
}
