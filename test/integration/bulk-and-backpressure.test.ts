/**
 * Volume and slow peers: 1 GiB each way at once with a checksum, and a reader that stops reading
 * while the writer keeps writing (the proxy's memory must stay bounded, and the transfer must
 * complete when the reader resumes).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import type { Socket } from "bun";
import { StreamWriter, newSide } from "../helpers/stream.ts";
import { startProxy, eventually, rssOf, type RunningProxy } from "../helpers/proxy.ts";
import { serve, type Server } from "../helpers/peers.ts";

const GiB = Number(process.env.BULK_BYTES ?? 1024 ** 3);


describe("volume and backpressure (userspace relay)", () => {
  let proxy: RunningProxy;
  let backend: Server;
  const backendSide = newSide();

  beforeAll(async () => {
    backend = serve({
      open(s: Socket<any>) { backendSide.writer = new StreamWriter(s, GiB); backendSide.writer.pump(); },
      data(_s: Socket<any>, d: Uint8Array) { backendSide.received += d.length; backendSide.hash.update(d); },
      drain() { backendSide.writer!.pump(); },
      // Bun reports the peer's FIN on a socket whose write side is already shut as close, not end.
      end() { backendSide.done = true; },
      close() { backendSide.done = true; },
    } as any);
    proxy = await startProxy(["serve", "--relay", "userspace", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${backend.port}`]);
  });
  afterAll(async () => {
    await proxy?.stop();
    backend?.stop();
  });

  test("1 GiB each way at the same time, checksums equal", async () => {
    const clientSide = newSide();
    const socket = await Bun.connect({
      hostname: "127.0.0.1", port: proxy.port, allowHalfOpen: true,
      socket: {
        data(_s, d) { clientSide.received += d.length; clientSide.hash.update(d); },
        drain() { clientSide.writer!.pump(); },
        end() { clientSide.done = true; },
        close() { clientSide.done = true; },
      },
    });
    clientSide.writer = new StreamWriter(socket, GiB);
    clientSide.writer.pump();
    const progress = setInterval(() => process.env.BULK_DEBUG && console.log(clientSide.writer!.sent, clientSide.received, backendSide.writer!.sent, backendSide.received, clientSide.done, backendSide.done), 1000);
    await eventually(() => clientSide.done && backendSide.done, 240_000, "both directions to finish").finally(() => clearInterval(progress));
    expect(clientSide.received).toBe(GiB);
    expect(backendSide.received).toBe(GiB);
    expect(clientSide.hash.digest("hex")).toBe(backendSide.writer!.hash.digest("hex"));
    expect(backendSide.hash.digest("hex")).toBe(clientSide.writer.hash.digest("hex"));
    socket.end();
  }, 300_000);
});

test("a reader that stops: proxy memory stays bounded, and everything arrives on resume", async () => {
  const TOTAL = 512 * 1024 * 1024;
  let writer: StreamWriter | null = null;
  const backend = serve({
    open(s: Socket<any>) { writer = new StreamWriter(s, TOTAL); writer.pump(); },
    drain() { writer!.pump(); },
    data() {},
  } as any);
  const proxy = await startProxy(["serve", "--relay", "userspace", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${backend.port}`]);
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
    // Give the writer two seconds to push; it stalls as soon as the kernel buffers and the one
    // pending chunk in the proxy are full.
    await Bun.sleep(2000);
    const stalledAt = writer!.sent;
    await Bun.sleep(1000);
    const after = rssOf(proxy.pid);
    expect(writer!.sent).toBe(stalledAt); // backpressure reached the writer: it is stuck
    expect(writer!.sent).toBeLessThan(TOTAL);
    // The bound: the proxy holds at most one read's worth per direction (Bun reads ≤ 64 KiB at a
    // time), the rest sits in kernel socket buffers. 16 MiB leaves room for allocator noise.
    expect(after - before).toBeLessThan(16 * 1024 * 1024);
    socket.resume();
    await eventually(() => ended, 60_000, "transfer to complete after resume");
    expect(received).toBe(TOTAL);
    expect(hash.digest("hex")).toBe(writer!.hash.digest("hex"));
    socket.end();
  } finally {
    await proxy.stop();
    backend.stop();
  }
}, 120_000);
