// A first-in first-out queue on a growable array with a head index.
//
// Why not a Map in insertion order: deleting a Map's oldest entries leaves
// holes at its front that every later iteration from the start must skip
// until V8 rehashes, so "look at the oldest entry" becomes O(entries deleted).
// This queue keeps that O(1) (amortised: the array is compacted when the
// consumed head passes half of it).

export class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, or undefined. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  /** Remove and return the oldest item, or undefined. */
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    (this.items as (T | undefined)[])[this.head] = undefined;
    this.head++;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
