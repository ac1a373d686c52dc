/**
 * The tests every kernel relay engine (splice, sockmap, uring) must pass, end to end through the compiled
 * binary: 1 GiB each way with checksums, bytes unchanged with the engine named in the access log,
 * 1000 concurrent pairs, half-close, resets both ways, idle timeout, a stalled reader. One suite,
 * run by test/integration/splice.test.ts, sockmap.test.ts and uring.test.ts with their engine's name.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { twoWayBackend, twoWayClient, type Side } from "./stream.ts";
import { stalledReaderHoldsMemoryBounded } from "./stalled-reader.ts";
import { startProxy, eventually, rssOf, writeConfig, type RunningProxy } from "./proxy.ts";
import { serve, echoServer, connect, writeAll, type Server } from "./peers.ts";

const GiB = Number(process.env.BULK_BYTES ?? 1024 ** 3);

export interface EngineSuiteOptions {
  /** Extra check on the proxy while the 1 GiB streams run (e.g. its read counters stay flat). */
  duringVolume?: (proxy: RunningProxy) => { check(): void | Promise<void> };
  /** Bound on the proxy's RSS growth while a reader is stalled. */
  stalledRssBound: number;
  /**
   * The volume test sends both ways at the same time (default), or one way and then the other
   * (sockmap: a pair whose directions are both busy while a reader lags is reset, not relayed:
   * native/src/sockmap.zig).
   */
  bothWaysAtOnce?: boolean;
  /** The proxy's environment (sockmap: the opt-in). */
  env?: Record<string, string>;
}

export function relayEngineSuite(engine: "splice" | "sockmap" | "uring", options: EngineSuiteOptions): void {
  const proxyFor = (backendPort: number, extra: string[] = []): Promise<RunningProxy> =>
    startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${backendPort}`, "--relay", engine, ...extra], { env: options.env });

  describe(`${engine} relay: volume`, () => {
    let proxy: RunningProxy;
    let backend: { port: number; stop(): void };
    let backendSide: Side;

    const together = options.bothWaysAtOnce ?? true;
    beforeAll(async () => {
      ({ server: backend, side: backendSide } = twoWayBackend(GiB, (h) => serve(h as any), together ? "together" : "after-client"));
      proxy = await proxyFor(backend.port);
    });
    afterAll(async () => {
      await proxy?.stop();
      backend?.stop();
    });

    test(`1 GiB each way ${together ? "at the same time" : "(one way, then the other)"}, checksums equal, counts right, proxy memory flat`, async () => {
      const clientSide = await twoWayClient(proxy.port, GiB);
      await eventually(() => clientSide.received > 16 * 1024 * 1024, 120_000, "first 16 MiB back");
      const rssEarly = rssOf(proxy.pid);
      const extra = options.duringVolume?.(proxy);
      await eventually(() => clientSide.done && backendSide.done, 240_000, "both directions to finish");
      const rssLate = rssOf(proxy.pid);
      await extra?.check();
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
      expect(rec.relay).toBe(engine);
      expect(proxy.stderr()).toContain(`relay engine: ${engine} configured=${engine}`);
    }, 300_000);
  });

  describe(`${engine} relay: semantics`, () => {
    let echo: Server;
    let proxy: RunningProxy;
    beforeAll(async () => {
      echo = echoServer();
      proxy = await proxyFor(echo.port);
    });
    afterAll(async () => {
      await proxy?.stop();
      echo?.stop();
    });

    test(`bytes go both ways unchanged, and the access log says relay ${engine}`, async () => {
      const c = await connect(proxy.port);
      await writeAll(c.socket, new TextEncoder().encode(`hello ${engine}`));
      await eventually(() => c.receivedText() === `hello ${engine}`, 5_000, "echo");
      c.socket.end();
      expect((await c.closed).error).toBeNull();
      const n = `hello ${engine}`.length;
      await eventually(() => proxy.accessLog().some((r) => r.bytesIn === n), 5_000, "record");
      const rec = proxy.accessLog().find((r) => r.bytesIn === n)!;
      expect(rec).toMatchObject({ bytesIn: n, bytesOut: n, reason: "done", relay: engine });
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

  test(`${engine}: half-close, the client's FIN reaches the backend, which still answers after it`, async () => {
    let backendGot = "";
    let backendSawEnd = false;
    const backend = serve({
      data(_s: Socket<any>, d: Uint8Array) { backendGot += new TextDecoder().decode(d); },
      end(s: Socket<any>) {
        backendSawEnd = true;
        setTimeout(() => { s.write("answer after FIN"); s.end(); }, 200);
      },
    } as any);
    const proxy = await proxyFor(backend.port);
    try {
      const c = await connect(proxy.port);
      await writeAll(c.socket, new TextEncoder().encode("question"));
      // The FIN after the handover: a FIN already in the kernel at handover time keeps sockmap away
      // (the kernel refuses a socket that is not ESTABLISHED any more) and stays in userspace.
      await eventually(() => backendGot === "question", 5_000, "backend to get the question");
      c.socket.shutdown();
      await eventually(() => backendSawEnd, 5_000, "backend to see the FIN");
      expect(backendGot).toBe("question");
      expect((await c.closed).error).toBeNull();
      expect(c.receivedText()).toBe("answer after FIN");
      await eventually(() => proxy.accessLog().length === 1, 5_000, "record");
      expect(proxy.accessLog()[0]).toMatchObject({ bytesIn: 8, bytesOut: 16, reason: "done", relay: engine });
    } finally {
      await proxy.stop();
      backend.stop();
    }
  });

  test(`${engine}: a backend RST reaches the client as a reset, and a client RST the backend`, async () => {
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
    const proxy = await proxyFor(backend.port);
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

  test(`${engine}: idle timeout, a silent pair closes, a talking one lives on`, async () => {
    const echo = echoServer();
    const config = writeConfig({
      relay: engine,
      listeners: [{ name: "t", listen: ["127.0.0.1:0"], idleTimeoutMs: 400, routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }],
    });
    const p = await startProxy(["serve", "-c", config], { env: options.env });
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

  test(`${engine}: a reader that stops holds the writer back, proxy memory stays bounded, and everything arrives on resume`, async () => {
    await stalledReaderHoldsMemoryBounded(engine, options.stalledRssBound, options.env);
  }, 120_000);
}

/** A few bytes through `proxy` to an echo backend and back. */
export async function relaysThrough(proxy: RunningProxy): Promise<void> {
  const c = await connect(proxy.port);
  await writeAll(c.socket, new TextEncoder().encode("still flows"));
  await eventually(() => c.receivedText() === "still flows", 5_000, "echo");
  c.socket.end();
  await c.closed;
}

/**
 * relay auto: a short exchange stays in userspace, and a connection that moves 4 MiB (64 KiB
 * requests, each echoed before the next, so it crosses the 256 KiB mark mid-stream) is handed to
 * splice (auto's only kernel engine) with every byte intact and counted.
 */
export async function autoHandsOverOnceBusy(p: RunningProxy): Promise<void> {
  await relaysThrough(p);
  const big = await connect(p.port);
  const chunk = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 255);
  for (let i = 0; i < 64; i++) {
    await writeAll(big.socket, chunk);
    await eventually(() => big.received().length === (i + 1) * chunk.length, 10_000, `echo ${i}`);
  }
  const got = big.received();
  for (let i = 0; i < 64; i++) expect(Buffer.compare(got.subarray(i * chunk.length, (i + 1) * chunk.length), chunk)).toBe(0);
  big.socket.end();
  await big.closed;
  await eventually(() => p.accessLog().length === 2, 5000, "access log");
  const [small, busy] = p.accessLog();
  expect(small!.relay).toBe("userspace");
  expect(busy).toMatchObject({ relay: "splice", bytesIn: 4 * 1024 * 1024, bytesOut: 4 * 1024 * 1024, reason: "done" });
}
