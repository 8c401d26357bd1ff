/**
 * Machines ordered the way fleet's least-loaded scheduler sorts them: by load ascending, then by
 * machine ID (`engine/scheduler.go`). Machines are known by rank, their position in the list sorted
 * by ID, so within one load the order is simply ascending rank.
 *
 * Loads live in buckets, one sorted array of ranks per load value, plus the sorted list of load
 * values in use. A load change moves one rank between neighbouring buckets (a binary search and a
 * splice), and `find` walks the buckets in order and usually stops at the first machine.
 */
export class LoadOrder {
  private readonly loads: Int32Array;
  private readonly buckets = new Map<number, number[]>();
  private readonly levels: number[] = [];

  /** `size` machines, ranks 0 to size - 1, all with load 0. */
  constructor(size: number) {
    this.loads = new Int32Array(size);
    if (size > 0) {
      this.buckets.set(
        0,
        Array.from({ length: size }, (_, i) => i),
      );
      this.levels.push(0);
    }
  }

  /** The load of machine `rank`. */
  load(rank: number): number {
    return this.loads[rank] ?? 0;
  }

  /** Changes the load of machine `rank` by `delta`. */
  add(rank: number, delta: number): void {
    if (delta === 0) return;
    const from = this.load(rank);
    const to = from + delta;
    this.loads[rank] = to;
    const old = this.buckets.get(from);
    if (old !== undefined) {
      old.splice(lowerBound(old, rank), 1);
      if (old.length === 0) {
        this.buckets.delete(from);
        this.levels.splice(lowerBound(this.levels, from), 1);
      }
    }
    const bucket = this.buckets.get(to);
    if (bucket === undefined) {
      this.buckets.set(to, [rank]);
      this.levels.splice(lowerBound(this.levels, to), 0, to);
    } else {
      bucket.splice(lowerBound(bucket, rank), 0, rank);
    }
  }

  /**
   * The first machine in (load, rank) order for which `accept` returns true, or -1. `accept` must
   * not change loads.
   */
  find(accept: (rank: number) => boolean): number {
    for (const level of this.levels) {
      const bucket = this.buckets.get(level);
      if (bucket === undefined) continue;
      for (const rank of bucket) {
        if (accept(rank)) return rank;
      }
    }
    return -1;
  }
}

/** The first index in the ascending `list` whose value is >= `value`. */
function lowerBound(list: readonly number[], value: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] ?? 0) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
