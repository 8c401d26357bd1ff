import type { UnitRec } from './cluster-index.js';

/** A min-heap of units by name: the scheduler considers pending units in name order. */
export class UnitQueue {
  private readonly heap: UnitRec[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(rec: UnitRec): void {
    const heap = this.heap;
    heap.push(rec);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent];
      if (p === undefined || p.name <= rec.name) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = rec;
  }

  /** The unit with the smallest name, removed; undefined when empty. */
  pop(): UnitRec | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const l = heap[left];
      const r = heap[right];
      let child = left;
      let c = l;
      if (r !== undefined && l !== undefined && r.name < l.name) {
        child = right;
        c = r;
      }
      if (c === undefined || last.name <= c.name) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}
