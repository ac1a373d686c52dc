/**
 * Bounds how often one message is written: a fuzzer or a scanner that makes every connection fail
 * the same way would otherwise write a warning per connection (96 000 lines from one fuzz run).
 * Per message text, per window: the first {@link REPEAT_LIMIT} pass, the rest are counted, and when
 * the window ends one summary says how many were left out. Fields are not part of the key: the
 * point is to drop repeats whose details (a client address, a parser's reason) differ.
 * Pure apart from the clock it is given.
 * @module
 */

/** Lines of one message written per window before the rest are counted instead. */
export const REPEAT_LIMIT = 10;
export const REPEAT_WINDOW_MS = 10_000;
/** Distinct messages remembered; past it, windows that have ended are forgotten first. */
const MAX_KEYS = 1024;

export interface Clock {
  now(): number;
  /** Call `fn` once, `ms` from now, without keeping the process alive. */
  later(fn: () => void, ms: number): void;
}

export const REAL_CLOCK: Clock = {
  now: () => performance.now(),
  later: (fn, ms) => void setTimeout(fn, ms).unref(),
};

interface Window {
  readonly end: number;
  seen: number;
}

export class RepeatLimiter {
  readonly #windows = new Map<string, Window>();

  constructor(
    readonly clock: Clock,
    /** Told, once a window has ended, how many lines of `key` it left out. */
    readonly summarize: (key: string, suppressed: number) => void,
    readonly limit = REPEAT_LIMIT,
    readonly windowMs = REPEAT_WINDOW_MS,
  ) {}

  /** Whether a line of `key` may be written now; if not, it is counted for the summary. */
  admit(key: string): "write" | "suppress" {
    const now = this.clock.now();
    let w = this.#windows.get(key);
    if (!w || now >= w.end) {
      if (!w && this.#windows.size >= MAX_KEYS) this.#forgetEnded(now);
      w = { end: now + this.windowMs, seen: 0 };
      this.#windows.set(key, w);
    }
    w.seen++;
    if (w.seen <= this.limit) return "write";
    // The first suppressed line of a window schedules its summary: no timer while nothing is dropped.
    if (w.seen === this.limit + 1) this.clock.later(() => this.summarize(key, w.seen - this.limit), w.end - now);
    return "suppress";
  }

  #forgetEnded(now: number): void {
    for (const [k, w] of this.#windows) if (now >= w.end) this.#windows.delete(k);
  }
}
