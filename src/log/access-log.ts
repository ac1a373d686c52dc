/**
 * The access log: one JSON object a line per finished connection, with the fields of SPEC.md.
 * Written to the configured file (appending; reopened on SIGHUP for logrotate), to stdout, or
 * nowhere ("off"). A line is written as soon as the event handler that finished its connection
 * returns (a microtask, so the lines of one handler, e.g. a drain closing everything, share a
 * write), unless the last write was less than {@link FLUSH_MS} ago: then it waits for the rest of
 * that interval, or for 64 KiB. So a lone connection's line is out at once, and a busy proxy writes
 * at most 20 times a second.
 * @module
 */
import { openSync, writeSync, closeSync } from "node:fs";
import type { LoggedFacts } from "../protocol/facts.ts";

/** One connection's record; the protocol's fields come from its facts (src/protocol/facts.ts logFields). */
export type AccessRecord = LoggedFacts & {
  ts: string;
  /** Unique among the process's (and its sibling workers') connections: see src/proxy/conn-id.ts. */
  id: string;
  listener: string;
  route: string | null;
  client: string;
  upstream: string | null;
  /** The address dialled for `upstream` (a name resolved), null when none was. */
  upstreamAddr: string | null;
  protocol: string;
  relay: "userspace" | "splice" | "sockmap" | "uring" | null;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  reason: string;
};

const FLUSH_BYTES = 64 * 1024;
const FLUSH_MS = 50;

export class AccessLog {
  #path: string | null = null;
  #fd = 1;
  #buffer = "";
  /** A flush to come: at the end of the current handler (true) or by a timer. */
  #scheduled: ReturnType<typeof setTimeout> | true | null = null;
  #lastFlush = -Infinity;

  /** Log to `path` ("stdout" or null: standard output). */
  open(path: string | null): void {
    const file = path && path !== "stdout" ? path : null;
    const fd = file ? openSync(file, "a") : 1;
    this.close();
    this.#path = file;
    this.#fd = fd;
  }

  /** Reopen the same file (after logrotate moved it away). */
  reopen(): void {
    this.open(this.#path);
  }

  write(record: AccessRecord): void {
    this.#buffer += JSON.stringify(record) + "\n";
    if (this.#buffer.length >= FLUSH_BYTES) return this.flush();
    if (this.#scheduled) return;
    const wait = this.#lastFlush + FLUSH_MS - performance.now();
    if (wait <= 0) {
      this.#scheduled = true;
      queueMicrotask(() => this.#scheduled === true && this.flush());
    } else {
      this.#scheduled = setTimeout(() => this.flush(), wait);
      this.#scheduled.unref();
    }
  }

  flush(): void {
    if (this.#scheduled && this.#scheduled !== true) clearTimeout(this.#scheduled);
    this.#scheduled = null;
    if (!this.#buffer) return;
    this.#lastFlush = performance.now();
    const text = this.#buffer;
    this.#buffer = "";
    writeSync(this.#fd, text);
  }

  close(): void {
    this.flush();
    if (this.#fd > 2) closeSync(this.#fd);
    this.#fd = 1;
  }
}
