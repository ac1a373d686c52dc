/**
 * The stalled-reader check, shared by every relay engine: a backend streams 512 MiB, the client
 * stops reading; backpressure must reach the backend (its writer stalls well before the end, so
 * kernel memory is bounded too, not only the proxy's), the proxy's RSS must stay within
 * `rssBound`, and every byte must arrive, in order, once the client reads again.
 */
import { expect } from "bun:test";
import { createHash } from "node:crypto";
import { startProxy, eventually, rssOf } from "./proxy.ts";
import { serve } from "./peers.ts";
import { streamingBackend } from "./stream.ts";

export async function stalledReaderHoldsMemoryBounded(relay: string, rssBound: number, env?: Record<string, string>): Promise<void> {
  const TOTAL = 512 * 1024 * 1024;
  const { server: backend, writers } = streamingBackend(TOTAL, (h) => serve(h as any));
  const proxy = await startProxy(["serve", "--relay", relay, "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${backend.port}`], { env });
  try {
    let received = 0;
    const hash = createHash("sha256");
    let ended = false;
    const socket = await Bun.connect({
      hostname: "127.0.0.1", port: proxy.port, allowHalfOpen: true,
      socket: {
        data(_s, d) { received += d.length; hash.update(d); },
        end() { ended = true; },
      },
    });
    await eventually(() => received > 1024 * 1024, 10_000, "first bytes");
    socket.pause();
    await Bun.sleep(300);
    const before = rssOf(proxy.pid);
    // Two seconds for the writer to fill every buffer on the way, then it must be stuck.
    await Bun.sleep(2000);
    const writer = writers[0]!;
    const stalledAt = writer.sent;
    await Bun.sleep(1000);
    const after = rssOf(proxy.pid);
    console.log(`${relay}: the writer stalled after ${(stalledAt / 1048576).toFixed(1)} MiB with the reader stopped`);
    expect(writer.sent).toBe(stalledAt); // backpressure reached the writer
    expect(writer.sent).toBeLessThan(TOTAL / 4);
    expect(after - before).toBeLessThan(rssBound);
    socket.resume();
    await eventually(() => ended, 60_000, "transfer to complete after resume");
    expect(received).toBe(TOTAL);
    expect(hash.digest("hex")).toBe(writer.hash.digest("hex"));
    socket.end();
  } finally {
    await proxy.stop();
    backend.stop();
  }
}
