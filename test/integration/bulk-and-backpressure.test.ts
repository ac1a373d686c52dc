/**
 * Volume and slow peers: 1 GiB each way at once with a checksum, and a reader that stops reading
 * while the writer keeps writing (the proxy's memory must stay bounded, and the transfer must
 * complete when the reader resumes).
 */
import { describe, expect, test } from "bun:test";
import { twoWayBackend, twoWayClient } from "../helpers/stream.ts";
import { stalledReaderHoldsMemoryBounded } from "../helpers/stalled-reader.ts";
import { startProxy, eventually } from "../helpers/proxy.ts";
import { serve } from "../helpers/peers.ts";

const GiB = Number(process.env.BULK_BYTES ?? 1024 ** 3);


describe("volume and backpressure (userspace relay)", () => {
  test("1 GiB each way at the same time, checksums equal", async () => {
    const { server: backend, side: backendSide } = twoWayBackend(GiB, (h) => serve(h as any));
    const proxy = await startProxy(["serve", "--relay", "userspace", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${backend.port}`]);
    try {
      const clientSide = await twoWayClient(proxy.port, GiB);
      await eventually(() => clientSide.done && backendSide.done, 240_000, "both directions to finish");
      expect(clientSide.received).toBe(GiB);
      expect(backendSide.received).toBe(GiB);
      expect(clientSide.hash.digest("hex")).toBe(backendSide.writer!.hash.digest("hex"));
      expect(backendSide.hash.digest("hex")).toBe(clientSide.writer!.hash.digest("hex"));
      clientSide.socket.end();
    } finally {
      await proxy.stop();
      backend.stop();
    }
  }, 300_000);
});

test("a reader that stops: proxy memory stays bounded, and everything arrives on resume", async () => {
  // The bound: the proxy holds at most one read's worth per direction (Bun reads ≤ 64 KiB at a
  // time), the rest sits in kernel socket buffers. 16 MiB leaves room for allocator noise.
  await stalledReaderHoldsMemoryBounded("userspace", 16 * 1024 * 1024);
}, 120_000);
