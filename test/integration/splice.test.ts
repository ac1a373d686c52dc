/**
 * The splice relay engine (native threads, splice(2) through a pipe per direction), end to end
 * through the compiled binary: volume with checksums, half-close, resets both ways, idle timeout,
 * 1000 concurrent pairs, 3000 idle pairs costing the proxy few fds, a stalled reader, the proxy's memory staying flat while GiBs pass (the bytes
 * never enter the JS heap), and the fallbacks when the library or splice is unavailable.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import type { Socket } from "bun";
import { twoWayBackend, twoWayClient, type Side } from "../helpers/stream.ts";
import { stalledReaderHoldsMemoryBounded } from "../helpers/stalled-reader.ts";
import { startProxy, eventually, rssOf, runBinary, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { serve, echoServer, connect, writeAll, type Server } from "../helpers/peers.ts";

const GiB = Number(process.env.BULK_BYTES ?? 1024 ** 3);
const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin" };


function spliceProxy(backendPort: number, extra: string[] = []): Promise<RunningProxy> {
  return startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${backendPort}`, "--relay", "splice", ...extra]);
}

describe("splice relay: volume", () => {
  let proxy: RunningProxy;
  let backend: { port: number; stop(): void };
  let backendSide: Side;

  beforeAll(async () => {
    ({ server: backend, side: backendSide } = twoWayBackend(GiB, (h) => serve(h as any)));
    proxy = await spliceProxy(backend.port);
  });
  afterAll(async () => {
    await proxy?.stop();
    backend?.stop();
  });

  test("1 GiB each way at the same time, checksums equal, counts right, proxy memory flat", async () => {
    const clientSide = await twoWayClient(proxy.port, GiB);
    await eventually(() => clientSide.received > 16 * 1024 * 1024, 30_000, "first 16 MiB");
    const rssEarly = rssOf(proxy.pid);
    await eventually(() => clientSide.done && backendSide.done, 240_000, "both directions to finish");
    const rssLate = rssOf(proxy.pid);
    expect(clientSide.received).toBe(GiB);
    expect(backendSide.received).toBe(GiB);
    expect(clientSide.hash.digest("hex")).toBe(backendSide.writer!.hash.digest("hex"));
    expect(backendSide.hash.digest("hex")).toBe(clientSide.writer!.hash.digest("hex"));
    // 2 GiB went through; had they passed through the JS heap, RSS would grow by far more than this.
    expect(rssLate - rssEarly).toBeLessThan(16 * 1024 * 1024);
    clientSide.socket.end();
    await eventually(() => proxy.accessLog().length === 1, 5_000, "access-log record");
    const rec = proxy.accessLog()[0]!;
    expect(rec.bytesIn).toBe(GiB);
    expect(rec.bytesOut).toBe(GiB);
    expect(rec.reason).toBe("done");
    expect(proxy.stderr()).toContain("relay engine: splice configured=splice");
  }, 300_000);
});

describe("splice relay: semantics", () => {
  let echo: Server;
  let proxy: RunningProxy;
  beforeAll(async () => {
    echo = echoServer();
    proxy = await spliceProxy(echo.port);
  });
  afterAll(async () => {
    await proxy?.stop();
    echo?.stop();
  });

  test("bytes go both ways unchanged, and the access log says relay splice", async () => {
    const c = await connect(proxy.port);
    await writeAll(c.socket, new TextEncoder().encode("hello splice"));
    await eventually(() => c.receivedText() === "hello splice", 5_000, "echo");
    c.socket.end();
    expect((await c.closed).error).toBeNull();
    await eventually(() => proxy.accessLog().some((r) => r.bytesIn === 12), 5_000, "record");
    const rec = proxy.accessLog().find((r) => r.bytesIn === 12)!;
    expect(rec).toMatchObject({ bytesIn: 12, bytesOut: 12, reason: "done", relay: "splice" });
  });

  test("1000 concurrent pairs each do request/response with every byte correct", async () => {
    const N = 1000;
    const clients = await Promise.all(Array.from({ length: N }, () => connect(proxy.port)));
    await Promise.all(clients.map((c, i) => writeAll(c.socket, new TextEncoder().encode(`request ${i} `.padEnd(100, "x")))));
    await eventually(() => clients.every((c) => c.received().length === 100), 60_000, "all echoes");
    clients.forEach((c, i) => expect(c.receivedText()).toBe(`request ${i} `.padEnd(100, "x")));
    for (const c of clients) c.socket.end();
    const closed = await Promise.all(clients.map((c) => c.closed));
    expect(closed.filter((x) => x.error !== null)).toEqual([]);
  }, 120_000);
});

test("3000 idle pairs, each verified with one echo: the engine holds no pipes for them", async () => {
  // Before: 8 fds per pair (Bun's 2, the engine's 2 dups, 2 pipes made at handover and kept). Now a
  // direction borrows a pipe only while bytes move, so an idle pair costs Bun's 2 fds and the engine's
  // 2 dups. The dups stay: Bun closes a paused socket's fd on its own when a RST arrives, and an
  // engine using Bun's bare fd numbers could then splice into a connection that reused the number.
  const N = 3000;
  const echo = echoServer();
  const proxy = await spliceProxy(echo.port);
  const clients: Awaited<ReturnType<typeof connect>>[] = [];
  try {
    const base = readdirSync(`/proc/${proxy.pid}/fd`).length;
    for (let i = 0; i < N; i += 250) {
      const batch = await Promise.all(Array.from({ length: Math.min(250, N - i) }, () => connect(proxy.port)));
      clients.push(...batch);
    }
    clients.forEach((c, i) => c.socket.write(`hello ${i}`.padEnd(16, ".")));
    await eventually(() => clients.every((c) => c.received().length === 16), 60_000, "every echo");
    clients.forEach((c, i) => expect(c.receivedText()).toBe(`hello ${i}`.padEnd(16, ".")));
    await Bun.sleep(200);
    const fds = readdirSync(`/proc/${proxy.pid}/fd`).length;
    const perPair = (fds - base) / N;
    console.log(`splice: ${N} idle pairs, proxy fds ${base} -> ${fds} (${perPair.toFixed(3)} per pair)`);
    expect(perPair).toBeGreaterThanOrEqual(4); // they are all spliced (userspace would be 2)
    expect(perPair).toBeLessThan(4.1); // no pipes: a pool of at most 64 spares per thread
    expect(fds).toBeLessThan(N * 4.5);
    for (const c of clients) c.socket.end();
    const closed = await Promise.all(clients.map((c) => c.closed));
    expect(closed.filter((x) => x.error !== null)).toEqual([]);
    await eventually(() => proxy.accessLog().length === N, 30_000, "every record");
    expect(proxy.accessLog().every((r) => r.relay === "splice" && r.reason === "done" && r.bytesIn === 16 && r.bytesOut === 16)).toBe(true);
  } finally {
    for (const c of clients) c.socket.terminate();
    await proxy.stop();
    echo.stop();
  }
}, 120_000);

test("half-close: the client's FIN reaches the backend, which still answers after it", async () => {
  let backendGot = "";
  let backendSawEnd = false;
  const backend = serve({
    data(_s: Socket<any>, d: Uint8Array) { backendGot += new TextDecoder().decode(d); },
    end(s: Socket<any>) {
      backendSawEnd = true;
      setTimeout(() => { s.write("answer after FIN"); s.end(); }, 200);
    },
  } as any);
  const proxy = await spliceProxy(backend.port);
  try {
    const c = await connect(proxy.port);
    await writeAll(c.socket, new TextEncoder().encode("question"));
    c.socket.shutdown();
    await eventually(() => backendSawEnd, 5_000, "backend to see the FIN");
    expect(backendGot).toBe("question");
    expect((await c.closed).error).toBeNull();
    expect(c.receivedText()).toBe("answer after FIN");
    await eventually(() => proxy.accessLog().length === 1, 5_000, "record");
    expect(proxy.accessLog()[0]).toMatchObject({ bytesIn: 8, bytesOut: 16, reason: "done" });
  } finally {
    await proxy.stop();
    backend.stop();
  }
});

test("reset: a backend RST reaches the client as a reset, and a client RST the backend", async () => {
  let backendClosed: Promise<string | null> = Promise.resolve(null);
  let onBackendClose: (e: string | null) => void = () => {};
  const backend = serve({
    open() { backendClosed = new Promise((r) => (onBackendClose = r)); },
    data(s: Socket<any>, d: Uint8Array) {
      if (new TextDecoder().decode(d).includes("reset me")) s.terminate();
    },
    error(_s: Socket<any>, e: Error) { onBackendClose((e as any).code ?? e.message); },
    close(_s: Socket<any>, e?: Error) { onBackendClose((e as any)?.code ?? null); },
  } as any);
  const proxy = await spliceProxy(backend.port);
  try {
    const c1 = await connect(proxy.port);
    await writeAll(c1.socket, new TextEncoder().encode("reset me"));
    expect((await c1.closed).error).toBe("ECONNRESET");
    await eventually(() => proxy.accessLog().length === 1, 5_000, "record");
    expect(proxy.accessLog()[0]!.reason).toBe("upstream_reset");

    const c2 = await connect(proxy.port);
    await writeAll(c2.socket, new TextEncoder().encode("hello"));
    await Bun.sleep(200);
    c2.socket.terminate();
    expect(await backendClosed).toBe("ECONNRESET");
    await eventually(() => proxy.accessLog().length === 2, 5_000, "record");
    expect(proxy.accessLog()[1]!.reason).toBe("client_reset");
  } finally {
    await proxy.stop();
    backend.stop();
  }
});

test("idle timeout is per read: a silent pair closes, a talking one lives on", async () => {
  const echo = echoServer();
  const config = writeConfig({
    relay: "splice",
    listeners: [{ name: "t", listen: ["127.0.0.1:0"], idleTimeoutMs: 400, routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }],
  });
  const p = await startProxy(["serve", "-c", config]);
  try {
    const busy = await connect(p.port);
    const idle = await connect(p.port);
    for (let i = 0; i < 12; i++) {
      await writeAll(busy.socket, new TextEncoder().encode("."));
      await Bun.sleep(100);
    }
    expect((await idle.closed).error).toBeNull();
    expect(busy.receivedText()).toBe("............");
    busy.socket.end();
    await busy.closed;
    await eventually(() => p.accessLog().length === 2, 5_000, "records");
    const reasons = p.accessLog().map((r) => r.reason).sort();
    expect(reasons).toEqual(["done", "idle_timeout"]);
  } finally {
    await p.stop();
    echo.stop();
  }
});

test("a reader that stops: proxy memory stays bounded, and everything arrives on resume", async () => {
  // In flight: kernel socket buffers and one pipe (≤ pipe-max-size), none of it in the proxy's RSS.
  await stalledReaderHoldsMemoryBounded("splice", 4 * 1024 * 1024);
}, 120_000);

describe("fallbacks", () => {
  async function relaysThrough(proxy: RunningProxy): Promise<void> {
    const c = await connect(proxy.port);
    await writeAll(c.socket, new TextEncoder().encode("still flows"));
    await eventually(() => c.receivedText() === "still flows", 5_000, "echo");
    c.socket.end();
    await c.closed;
  }

  test("library absent (SWITCHYARD_NATIVE=off): userspace relay, the log says which and why", async () => {
    const echo = echoServer();
    const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`, "--relay", "splice"], { env: { ...ENV, SWITCHYARD_NATIVE: "off" } });
    try {
      await relaysThrough(p);
      await p.waitForLog("relay engine: userspace (splice unavailable)");
      expect(p.stderr()).toContain('reason="native library not loaded: disabled by SWITCHYARD_NATIVE=off"');
      expect(p.stderr().match(/relay engine:/g)!.length).toBe(1);
    } finally {
      await p.stop();
      echo.stop();
    }
  });

  test("splice refused (SWITCHYARD_NATIVE_SPLICE=off simulates it), relay auto: userspace, logged once", async () => {
    const echo = echoServer();
    const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`], { env: { ...ENV, SWITCHYARD_NATIVE_SPLICE: "off" } });
    try {
      await relaysThrough(p);
      await relaysThrough(p);
      await p.waitForLog("relay engine: userspace (splice unavailable)");
      expect(p.stderr()).toContain("configured=auto");
      expect(p.stderr()).toContain("refused by SWITCHYARD_NATIVE_SPLICE=off");
      expect(p.stderr().match(/relay engine:/g)!.length).toBe(1);
    } finally {
      await p.stop();
      echo.stop();
    }
  });

  test("relay auto: short exchanges stay in userspace, a busy connection moves to splice mid-stream", async () => {
    const echo = echoServer();
    const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`]);
    try {
      await p.waitForLog("relay engine: splice configured=auto");
      await relaysThrough(p); // a few bytes
      // 4 MiB in 64 KiB requests, each echoed before the next: crosses the 256 KiB mark mid-stream.
      const c = await connect(p.port);
      const chunk = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 255);
      for (let i = 0; i < 64; i++) {
        await writeAll(c.socket, chunk);
        await eventually(() => c.received().length === (i + 1) * chunk.length, 10_000, `echo ${i}`);
      }
      const got = c.received();
      for (let i = 0; i < 64; i++) expect(Buffer.compare(got.subarray(i * chunk.length, (i + 1) * chunk.length), chunk)).toBe(0);
      c.socket.end();
      await c.closed;
      await eventually(() => p.accessLog().length === 2, 5000, "access log");
      const [small, big] = p.accessLog();
      expect(small!.relay).toBe("userspace");
      expect(big).toMatchObject({ relay: "splice", bytesIn: 4 * 1024 * 1024, bytesOut: 4 * 1024 * 1024, reason: "done" });
    } finally {
      await p.stop();
      echo.stop();
    }
  });

  test("switchyard version says whether splice is usable, and why not", async () => {
    expect((await runBinary(["version"])).stdout).toContain("  splice: usable");
    const off = await runBinary(["version"], { ...ENV, SWITCHYARD_NATIVE: "off" });
    expect(off.stdout).toContain("  splice: not usable (native library not loaded: disabled by SWITCHYARD_NATIVE=off)");
  });
});
