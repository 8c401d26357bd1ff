/**
 * Exponential backoff with full jitter: attempt n waits a random time in
 * [initial * factor^n / 2, initial * factor^n], capped at `max`. Randomness is injected so tests
 * are exact.
 */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor?: number;
  /** Returns a number in [0, 1); defaults to Math.random. */
  readonly random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly factor: number;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    this.factor = options.factor ?? 2;
    this.random = options.random ?? Math.random;
  }

  /** The delay before the next retry; each call counts one more failure. */
  next(): number {
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * this.factor ** this.attempt);
    this.attempt++;
    return Math.round(ceiling / 2 + (ceiling / 2) * this.random());
  }

  /** Forgets past failures, after a success. */
  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}
