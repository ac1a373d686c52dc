/**
 * Out of file descriptors. Bun's accept loop does nothing on accept4() = EMFILE: the listening socket
 * stays readable, the event loop wakes again at once and spins a core while the clients queued on it
 * wait unanswered (12 000 failed accepts a second under `ulimit -n 256` with 1000 clients). So each
 * process watches its fd table and pauses all its listeners (src/listen/bound-listener.ts) instead:
 * - at accept: a client whose fd number is within `reserve` of the limit pauses at once (the kernel
 *   hands out the lowest free fd, so every fd below it is taken), leaving fds for the upstreams of the
 *   connections already accepted, so those are served;
 * - every PROBE_MS, the backstop: opening /dev/null fails with EMFILE (fds freed out of order can
 *   leave the last free ones low) or ENFILE (the system's file table is full).
 * It resumes once a probe opens and 2 × reserve fds are free, and not before the pause has lasted
 * its interval: PAUSE_MIN_MS, doubling up to PAUSE_MAX_MS each time the probe had to catch it (the
 * loop spun until then); a pause at accept costs nothing, so a backlog drains at full speed. One warning
 * per episode (an episode ends after QUIET_MS without a pause); every pause is counted per listener
 * (switchyard_accept_paused_total).
 * @module
 */
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import type { Metrics } from "../control/metrics.ts";
import { log } from "../log/logger.ts";
import type { BoundListener } from "./bound-listener.ts";

const PROBE_MS = 100;
const PAUSE_MIN_MS = 50;
const PAUSE_MAX_MS = 2_000;
const QUIET_MS = 10_000;

export type FdShortage = "EMFILE" | "ENFILE";

interface Episode {
  readonly since: number;
  pauses: number;
}

export class FdPressure {
  /** Fds kept free for connections already accepted (their upstream, TLS, splice pipes). */
  readonly reserve: number;
  #listeners: () => Iterable<BoundListener> = () => [];
  #metrics: Metrics | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #paused: FdShortage | null = null;
  #pausedAt = 0;
  #resumedAt = 0;
  #pauseMs = PAUSE_MIN_MS;
  #episode: Episode | null = null;

  /** `limit`: the soft RLIMIT_NOFILE (Infinity when unlimited or unknown). */
  constructor(readonly limit = openFileLimit()) {
    this.reserve = Math.min(256, Math.max(8, Math.floor(limit / 16)));
  }

  /** Watch this process's fds on behalf of `listeners` (read anew each time), counting in `metrics`. */
  watch(listeners: () => Iterable<BoundListener>, metrics: Metrics): void {
    this.#listeners = listeners;
    this.#metrics = metrics;
    this.#timer ??= setInterval(() => this.#tick(), PROBE_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Why accepting is paused now, or null. */
  get paused(): FdShortage | null {
    return this.#paused;
  }

  /** A client was accepted on fd `fd`. Runs inside Bun's accept loop: pausing here ends that loop. */
  accepted(fd: number): void {
    if (this.#paused === null && fd >= this.limit - this.reserve) this.#pause("EMFILE", false);
  }

  /** A listener bound while paused joins the pause. */
  joined(bound: BoundListener): void {
    if (this.#paused && bound.pause()) this.#metrics?.listener(bound.listener).countAcceptPause(this.#paused);
  }

  #tick(): void {
    const now = Date.now();
    if (this.#paused) {
      if (now - this.#pausedAt >= this.#pauseMs && probe() === null && freeFds(this.limit) >= 2 * this.reserve) this.#resume(now);
      return;
    }
    const short = probe();
    if (short) return this.#pause(short, true);
    if (this.#episode && now - this.#resumedAt > QUIET_MS) {
      log.info("accepting normally again: file descriptors are free", { pauses: this.#episode.pauses, forMs: now - this.#episode.since });
      this.#episode = null;
      this.#pauseMs = PAUSE_MIN_MS;
    }
  }

  /** `late`: found by the probe, after the loop may have spun since the last tick. */
  #pause(reason: FdShortage, late: boolean): void {
    const now = Date.now();
    this.#paused = reason;
    this.#pausedAt = now;
    let paused = 0;
    let cannot = 0;
    for (const b of this.#listeners()) {
      if (b.pause()) {
        paused++;
        this.#metrics?.listener(b.listener).countAcceptPause(reason);
      } else if (!b.paused) cannot++;
    }
    if (late) this.#pauseMs = Math.min(this.#pauseMs * 2, PAUSE_MAX_MS);
    if (this.#episode) return void this.#episode.pauses++;
    this.#episode = { since: now, pauses: 1 };
    const why = reason === "EMFILE" ? `this process's limit (${this.limit}; raise LimitNOFILE= or ulimit -n)` : "the system's file table (fs.file-max)";
    log.warn(`out of file descriptors, ${why}: not accepting new connections until some close`, {
      reason, limit: this.limit, reserve: this.reserve, listenersPaused: paused,
      ...(cannot ? { cannotPause: cannot, why: "no native library: these keep waking on every queued client" } : {}),
    });
  }

  #resume(now: number): void {
    let all = true;
    for (const b of this.#listeners()) all = b.resume() && all;
    if (!all) return void (this.#pausedAt = now); // try again after another interval
    this.#paused = null;
    this.#resumedAt = now;
  }
}

/** The process's fds, shared by every listener of this process (workers each have their own). */
export const fdPressure = new FdPressure();

/** null when a file can be opened now, else why not. */
function probe(): FdShortage | null {
  try {
    closeSync(openSync("/dev/null", "r"));
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "EMFILE" || code === "ENFILE" ? code : null;
  }
}

function freeFds(limit: number): number {
  try {
    return limit - readdirSync("/proc/self/fd").length;
  } catch {
    return 0;
  }
}

/** The soft RLIMIT_NOFILE from /proc/self/limits; Infinity when unlimited or unreadable. */
export function openFileLimit(text = readLimits()): number {
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  const n = Number(soft);
  return Number.isInteger(n) && n > 0 ? n : Infinity;
}

function readLimits(): string {
  try {
    return readFileSync("/proc/self/limits", "utf8");
  } catch {
    return "";
  }
}
