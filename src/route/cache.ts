/**
 * Routing cache for resolver answers. Keyed by a 64-bit hash of the WHOLE key, and each entry keeps
 * the full key to compare on a hit, so neither a long key (the reference proxy truncated keys, so two
 * databases with a common prefix shared a route) nor a hash collision can return another key's route.
 * Bounded: the oldest entry is evicted first (Map keeps insertion order).
 * @module
 */

interface Entry<V> {
  key: string;
  value: V;
  expiresAt: number;
}

export class RouteCache<V> {
  readonly #entries = new Map<bigint, Entry<V>>();
  hits = 0;
  misses = 0;

  constructor(
    readonly ttlMs: number,
    readonly maxEntries: number,
    readonly hash: (key: string) => bigint,
    readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    const h = this.hash(key);
    const e = this.#entries.get(h);
    if (!e || e.key !== key || e.expiresAt <= this.now()) {
      if (e && e.key === key) this.#entries.delete(h);
      this.misses++;
      return undefined;
    }
    this.hits++;
    return e.value;
  }

  set(key: string, value: V): void {
    if (this.ttlMs <= 0 || this.maxEntries <= 0) return;
    const h = this.hash(key);
    this.#entries.delete(h); // re-insert so it becomes the newest
    while (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next().value as bigint;
      this.#entries.delete(oldest);
    }
    this.#entries.set(h, { key, value, expiresAt: this.now() + this.ttlMs });
  }
}
