/** A binary min-heap ordered by a number: the keys that recover first come out first. */
export class MinHeap<T> {
  readonly #items: T[] = [];
  readonly #priority: (item: T) => number;

  constructor(priority: (item: T) => number) {
    this.#priority = priority;
  }

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    const items = this.#items;
    items.push(item);
    let i = items.length - 1;
    const p = this.#priority(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#priority(items[parent]) <= p) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = item;
  }

  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    const p = this.#priority(last);
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length &&
          this.#priority(items[right]) < this.#priority(items[left])
        ? right
        : left;
      if (this.#priority(items[child]) >= p) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = last;
    return top;
  }

  clear(): void {
    this.#items.length = 0;
  }
}
