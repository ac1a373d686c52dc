/**
 * A checksummed byte stream for volume tests: deterministic, incompressible-looking blocks written
 * as fast as a socket takes them (driven from its drain handler), and the receiving side's tally.
 */
import { createHash } from "node:crypto";
import type { Socket } from "bun";

/** Block i of the stream: xorshift output seeded by i. */
function block(i: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  const view = new Uint32Array(out.buffer);
  let x = (i * 2654435761) >>> 0 || 1;
  for (let k = 0; k < view.length; k++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    view[k] = x;
  }
  return out;
}

/** Writes `total` bytes, then shuts the write side; call pump() at start and from drain. */
export class StreamWriter {
  sent = 0;
  #blocks: Uint8Array[];
  #pending: Uint8Array | null = null;
  readonly hash = createHash("sha256");
  constructor(readonly socket: Socket<any>, readonly total: number, blockSize = 256 * 1024) {
    // 16 distinct blocks cycled: distinct enough that a reordered or dropped block changes the hash.
    this.#blocks = Array.from({ length: 16 }, (_, i) => block(i + 1, blockSize));
  }
  pump(): void {
    for (;;) {
      if (!this.#pending) {
        if (this.sent >= this.total) return void this.socket.shutdown();
        const b = this.#blocks[(this.sent / this.#blocks[0]!.length) % 16 | 0]!;
        this.#pending = b.subarray(0, Math.min(b.length, this.total - this.sent));
        this.hash.update(this.#pending);
      }
      const n = this.socket.write(this.#pending);
      if (n <= 0) return;
      this.sent += n;
      if (n < this.#pending.length) { this.#pending = this.#pending.subarray(n); return; }
      this.#pending = null;
    }
  }
}

/** One end of a two-way volume test: what it writes and what it has received. */
export interface Side { writer: StreamWriter | null; received: number; hash: ReturnType<typeof createHash>; done: boolean }
export const newSide = (): Side => ({ writer: null, received: 0, hash: createHash("sha256"), done: false });

/** A backend that streams `total` bytes of the stream to each client as fast as it reads them. */
export function streamingBackend(total: number, serve: (handlers: object) => { port: number; stop(): void }) {
  const writers: StreamWriter[] = [];
  const server = serve({
    open(s: Socket<any>) { const w = new StreamWriter(s, total); s.data = w; writers.push(w); w.pump(); },
    drain(s: Socket<any>) { (s.data as StreamWriter).pump(); },
    data() {},
  });
  return { server, writers };
}

/**
 * A backend that streams `total` bytes to its (one) client while hashing what it receives: from
 * the start ("together"), or once the client's stream has ended ("after-client": one way, then the
 * other). Bun reports the peer's FIN on a socket whose write side is already shut as close, not
 * end, so both mark the side done.
 */
export function twoWayBackend(total: number, serve: (handlers: object) => { port: number; stop(): void }, start: "together" | "after-client" = "together") {
  const side = newSide();
  const server = serve({
    open(s: Socket<any>) { side.writer = new StreamWriter(s, total); if (start === "together") side.writer.pump(); },
    data(_s: Socket<any>, d: Uint8Array) { side.received += d.length; side.hash.update(d); },
    drain() { side.writer!.pump(); },
    end() {
      side.done = true;
      if (start === "after-client") side.writer!.pump();
    },
    close() { side.done = true; },
  });
  return { server, side };
}

/** Connect and stream `total` bytes while hashing what comes back; returns the client's side. */
export async function twoWayClient(port: number, total: number): Promise<Side & { socket: Socket<any> }> {
  const side = newSide();
  const socket = await Bun.connect({
    hostname: "127.0.0.1", port, allowHalfOpen: true,
    socket: {
      data(_s, d) { side.received += d.length; side.hash.update(d); },
      drain() { side.writer!.pump(); },
      end() { side.done = true; },
      close() { side.done = true; },
    },
  });
  side.writer = new StreamWriter(socket, total);
  side.writer.pump();
  return Object.assign(side, { socket });
}
