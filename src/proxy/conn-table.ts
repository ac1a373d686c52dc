/**
 * The open connections of a process, by id: what a Set<Conn> or a Map<number, Conn> would hold, in
 * a fraction of their memory. JSC's Map costs about 136 bytes per entry and its Set 105 (measured
 * with 5000 entries, bench/results/2026-12-03-uring-idle-memory.md); this table is one array of
 * references, open addressing with linear probing at a load of at most one half: 24 to 48 bytes per
 * connection. With thousands of idle connections held by a kernel engine, those maps were a sixth
 * of what JS kept per connection.
 *
 * A removed entry leaves a tombstone, and the array is only rebuilt by {@link add}, so removing
 * entries while iterating (a drain resetting every connection, the sweeper aborting one) visits
 * every other entry exactly once. Adding while iterating is not supported (nothing adds then: new
 * connections come from the event loop, never from a callback of an iteration).
 * Iteration order is the table's, not insertion order.
 * @module
 */

/** What the table needs of a connection: its process-unique id (src/proxy/conn-id.ts). */
export interface Keyed {
  readonly id: number;
}

const MIN_CAPACITY = 16;
/** Knuth's multiplicative constant: consecutive ids (the usual case) spread over the whole table. */
const GOLDEN = 0x9e3779b1;

export class ConnTable<T extends Keyed> {
  /** null: never used; TOMB: removed; else an entry. Length is a power of two. */
  #slots: (T | null)[] = new Array<T | null>(MIN_CAPACITY).fill(null);
  #shift = 32 - Math.log2(MIN_CAPACITY);
  #live = 0;
  /** Live entries and tombstones: what probing walks over. */
  #used = 0;

  get size(): number {
    return this.#live;
  }

  /** Adds `entry`, whose id is not in the table (a connection is added once, at accept or handover). */
  add(entry: T): void {
    if ((this.#used + 1) * 2 > this.#slots.length) this.#rebuild();
    this.#insert(entry);
  }

  #insert(entry: T): void {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let i = this.#home(entry.id);
    while (slots[i] !== null && slots[i] !== TOMB) i = (i + 1) & mask;
    if (slots[i] === null) this.#used++;
    slots[i] = entry;
    this.#live++;
  }

  get(id: number): T | undefined {
    const i = this.#find(id);
    return i < 0 ? undefined : (this.#slots[i] as T);
  }

  /** Removes the entry with `id`; false when there was none. */
  remove(id: number): boolean {
    const i = this.#find(id);
    if (i < 0) return false;
    this.#slots[i] = TOMB;
    this.#live--;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    const slots = this.#slots;
    for (let i = 0; i < slots.length; i++) {
      const e = slots[i]!;
      if (e !== null && e !== TOMB) yield e;
    }
  }

  #home(id: number): number {
    return Math.imul(id | 0, GOLDEN) >>> this.#shift;
  }

  #find(id: number): number {
    const slots = this.#slots;
    const mask = slots.length - 1;
    for (let i = this.#home(id); ; i = (i + 1) & mask) {
      const e = slots[i]!;
      if (e === null) return -1;
      if (e !== TOMB && e.id === id) return i;
    }
  }

  /**
   * A new array at most a third full with the live entries, without tombstones: at least half as
   * many adds as there are entries before the next rebuild, so a steady churn rebuilds rarely.
   */
  #rebuild(): void {
    const old = this.#slots;
    let capacity = MIN_CAPACITY;
    while (capacity < (this.#live + 1) * 3) capacity *= 2;
    this.#slots = new Array<T | null>(capacity).fill(null);
    this.#shift = 32 - Math.log2(capacity);
    this.#used = 0;
    this.#live = 0;
    for (const e of old) if (e !== null && e !== TOMB) this.#insert(e);
  }
}

/** The tombstone of a removed entry (compared by identity only). */
const TOMB = Object.freeze({ id: -1 }) as never;
