/** Small statistics for benchmark figures. Pure. */

/** The q-quantile (0..1) by linear interpolation between closest ranks; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[hi] ?? Number.NaN;
  return a + (b - a) * (pos - lo);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly p90: number;
  readonly min: number;
  readonly max: number;
  /** max - min */
  readonly spread: number;
}

export function summarize(values: readonly number[]): Summary {
  const min = values.length === 0 ? Number.NaN : Math.min(...values);
  const max = values.length === 0 ? Number.NaN : Math.max(...values);
  return {
    n: values.length,
    median: median(values),
    p90: quantile(values, 0.9),
    min,
    max,
    spread: max - min,
  };
}

/** "412 ms" or "1.23 s". */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Bytes as "12.3 MB" (units of 2^20 bytes, as the memory figures have always been printed). */
export function fmtMB(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
