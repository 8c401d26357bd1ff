import { compileNamePattern, type NamePattern } from './name-pattern.js';

/**
 * The distinct globs of one option (Conflicts or Replaces) across the cluster, each with an id,
 * and per machine two counters: how many units there hold the pattern, and how many units there
 * have a name it matches. A symmetric conflict check is then a few counter reads per machine
 * instead of a glob match against every unit there: unit U conflicts on machine M when one of U's
 * patterns has a match count on M, or a pattern matching U's name has a holder on M.
 *
 * Counters are sparse (machine rank -> count), so many patterns on many machines stay cheap.
 */
export class PatternTable {
  private readonly ids = new Map<string, number>();
  private readonly compiled: NamePattern[] = [];
  private readonly literals = new Map<string, number>();
  private readonly wildcards: number[] = [];
  private readonly holders: Map<number, number>[] = [];
  private readonly matches: Map<number, number>[] = [];

  /** The number of distinct patterns. */
  get size(): number {
    return this.compiled.length;
  }

  /** The text of pattern `id`. */
  pattern(id: number): string {
    return this.get(this.compiled, id).pattern;
  }

  /** The id of `pattern`, adding it when new (ids are dense, in order of first sight). */
  intern(pattern: string): number {
    const known = this.ids.get(pattern);
    if (known !== undefined) return known;
    const id = this.compiled.length;
    const compiled = compileNamePattern(pattern);
    this.ids.set(pattern, id);
    this.compiled.push(compiled);
    this.holders.push(new Map());
    this.matches.push(new Map());
    if (compiled.literal === undefined) this.wildcards.push(id);
    else this.literals.set(compiled.literal, id);
    return id;
  }

  /** The ids of every pattern matching `name`. */
  idsMatching(name: string): number[] {
    const out: number[] = [];
    for (const id of this.wildcards) {
      if (this.get(this.compiled, id).matches(name)) out.push(id);
    }
    const literal = this.literals.get(name);
    if (literal !== undefined) out.push(literal);
    return out;
  }

  /** True when pattern `id` matches `name`. */
  test(id: number, name: string): boolean {
    return this.get(this.compiled, id).matches(name);
  }

  /** How many units on machine `rank` hold pattern `id`. */
  heldOn(id: number, rank: number): number {
    return this.get(this.holders, id).get(rank) ?? 0;
  }

  /** How many units on machine `rank` have a name pattern `id` matches. */
  matchedOn(id: number, rank: number): number {
    return this.get(this.matches, id).get(rank) ?? 0;
  }

  /** Adds `delta` to the holder count of pattern `id` on machine `rank`. */
  addHolder(id: number, rank: number, delta: number): void {
    bump(this.get(this.holders, id), rank, delta);
  }

  /** Adds `delta` to the match count of pattern `id` on machine `rank`. */
  addMatch(id: number, rank: number, delta: number): void {
    bump(this.get(this.matches, id), rank, delta);
  }

  private get<T>(list: readonly T[], id: number): T {
    const item = list[id];
    if (item === undefined) throw new RangeError(`unknown pattern id ${id}`);
    return item;
  }
}

function bump(counts: Map<number, number>, rank: number, delta: number): void {
  const next = (counts.get(rank) ?? 0) + delta;
  if (next === 0) counts.delete(rank);
  else counts.set(rank, next);
}
