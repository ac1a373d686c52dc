/**
 * The access log: one JSON object a line per finished connection, with the fields of SPEC.md.
 * Written to the configured file (appending; reopened on SIGHUP for logrotate), to stdout, or
 * nowhere ("off"). Lines are buffered and flushed every 100 ms or at 64 KiB, so a burst of short
 * connections costs one write per batch, not one per connection.
 * @module
 */
import { openSync, writeSync, closeSync } from "node:fs";

export interface AccessRecord {
  ts: string;
  id: number;
  listener: string;
  route: string | null;
  client: string;
  upstream: string | null;
  protocol: string;
  sni: string | null;
  alpn: string | null;
  ja3: string | null;
  ja4: string | null;
  tls: "terminate" | "passthrough" | "none";
  /** mTLS: the verified client certificate's subject (only when there is one). */
  clientCert?: string;
  /** postgres listeners: from the StartupMessage. */
  database?: string;
  user?: string | null;
  relay: "userspace" | "splice" | "sockmap" | null;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  reason: string;
}

const FLUSH_BYTES = 64 * 1024;
const FLUSH_MS = 100;

export class AccessLog {
  #path: string | null = null;
  #fd = 1;
  #buffer = "";
  #timer: ReturnType<typeof setTimeout> | null = null;

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
    if (this.#buffer.length >= FLUSH_BYTES) this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.#timer.unref();
    }
  }

  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#buffer) return;
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
