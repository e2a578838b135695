// A min-heap of (deadline, item): the roles' timers without a timer per item.
//
// Items whose deadline moves later (a keepalive, a refresh) are not re-queued
// on every move: the owner keeps the current deadline in the item and, when
// the old entry comes due, re-queues it at the new one (`popDue` hands it back
// and the owner decides). So each item costs one heap entry, and renewing it
// costs nothing.

export class DeadlineHeap<T> {
  private readonly at: number[] = [];
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  push(deadline: number, item: T): void {
    const at = this.at;
    const items = this.items;
    let i = at.length;
    at.push(deadline);
    items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (at[p] <= deadline) break;
      at[i] = at[p];
      items[i] = items[p];
      i = p;
    }
    at[i] = deadline;
    items[i] = item;
  }

  /** The earliest deadline, or Infinity when empty. */
  peek(): number {
    return this.at.length ? this.at[0] : Infinity;
  }

  /** Remove and return the earliest item (undefined when empty). */
  pop(): T | undefined {
    const at = this.at;
    const items = this.items;
    if (at.length === 0) return undefined;
    const top = items[0];
    const lastAt = at.pop() as number;
    const lastItem = items.pop() as T;
    const n = at.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && at[r] < at[l] ? r : l;
        if (at[c] >= lastAt) break;
        at[i] = at[c];
        items[i] = items[c];
        i = c;
      }
      at[i] = lastAt;
      items[i] = lastItem;
    }
    return top;
  }

  /** Pop every item due at `now` (deadline <= now), calling `fn(item, deadline)` for each. */
  popDue(now: number, fn: (item: T, deadline: number) => void): void {
    while (this.at.length && this.at[0] <= now) {
      const deadline = this.at[0];
      fn(this.pop() as T, deadline);
    }
  }
}
