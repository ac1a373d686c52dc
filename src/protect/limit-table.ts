/**
 * What the gate asks of its limits, whoever keeps them: a token bucket and an open-connection count
 * per key. {@link LocalLimitTable} keeps them in this process (pure, unit-tested; the fallback without
 * the native library); src/protect/shared-table.ts keeps them in shared memory across workers.
 * @module
 */

/** Why a key was refused, or that it was admitted. "busy"/"tableFull" admit (fail open) but say so. */
export type Verdict = "admitted" | "rateLimited" | "concurrencyLimited" | "busy" | "tableFull";

/** A limit key: two independent 32-bit hashes of its text (collisions need both to collide). */
export interface LimitKey {
  readonly h1: number;
  readonly h2: number;
}

export interface LimitTable {
  /**
   * Admit one connection for `key`: refused when `maxOpen` > 0 and that many are open, or when `rate`
   * > 0 (connections per second, bucket of `burst`) has no token left. With `count`, an admitted
   * connection is open until {@link release}.
   */
  take(key: LimitKey, rate: number, burst: number, maxOpen: number, count: boolean): Verdict;
  release(key: LimitKey): void;
  /** Connections open for `key` now (across workers when shared). */
  open(key: LimitKey): number;
  /** "shared" across workers, or "local" to this process. */
  readonly scope: "shared" | "local";
}

/** Token bucket arithmetic, shared by the local table and its tests. */
export class TokenBucket {
  tokens: number;
  last: number;

  constructor(burst: number, now: number) {
    this.tokens = burst;
    this.last = now;
  }

  /** Refill for the time since the last call (`now` in ms), then take one token if there is one. */
  take(rate: number, burst: number, now: number): boolean {
    this.tokens = Math.min(burst, this.tokens + (rate * Math.max(now - this.last, 0)) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** When the bucket is full again (ms). */
  fullAt(rate: number, burst: number): number {
    return rate > 0 ? this.last + ((burst - this.tokens) * 1000) / rate : this.last;
  }
}

interface Entry {
  bucket: TokenBucket | null;
  open: number;
}

/** Limits kept in this process. Entries with nothing open and a full bucket are swept when many. */
export class LocalLimitTable implements LimitTable {
  readonly scope = "local";
  readonly #entries = new Map<string, Entry>();

  constructor(readonly now: () => number, readonly maxEntries = 65_536) {}

  take(key: LimitKey, rate: number, burst: number, maxOpen: number, count: boolean): Verdict {
    const id = `${key.h1}:${key.h2}`;
    let e = this.#entries.get(id);
    if (!e) {
      if (this.#entries.size >= this.maxEntries) this.#sweep();
      if (this.#entries.size >= this.maxEntries) return "tableFull";
      this.#entries.set(id, (e = { bucket: null, open: 0 }));
    }
    if (maxOpen > 0 && e.open >= maxOpen) return "concurrencyLimited";
    if (rate > 0) {
      e.bucket ??= new TokenBucket(burst, this.now());
      if (!e.bucket.take(rate, burst, this.now())) return "rateLimited";
    }
    if (count) e.open++;
    return "admitted";
  }

  release(key: LimitKey): void {
    const e = this.#entries.get(`${key.h1}:${key.h2}`);
    if (e && e.open > 0) e.open--;
  }

  open(key: LimitKey): number {
    return this.#entries.get(`${key.h1}:${key.h2}`)?.open ?? 0;
  }

  #sweep(): void {
    const now = this.now();
    for (const [id, e] of this.#entries) {
      // The bucket's own rate is not kept; an entry idle for a minute with nothing open is dropped.
      if (e.open === 0 && (!e.bucket || now - e.bucket.last > 60_000)) this.#entries.delete(id);
    }
  }
}
