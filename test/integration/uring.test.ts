/**
 * The uring relay engine (one io_uring per process, multishot receives into a provided-buffer ring,
 * sends from those buffers; native/src/uring.zig), end to end through the compiled binary: the
 * shared engine suite (test/helpers/engine-suite.ts: volume with checksums and the proxy's memory
 * flat while GiBs pass, half-close, resets, idle timeout, 1000 pairs, a stalled reader), then what
 * is uring's own: idle pairs costing the proxy 2 fds each with native accept (the engine's only
 * sockets) and 4 when Bun accepted and handed them over (SWITCHYARD_NATIVE_ACCEPT=off), a ring per worker (and
 * a killed worker's replacement on uring again), and the fallbacks when io_uring or the library is
 * unavailable. The drain tests (drain.test.ts) and the relay-integrity suite run over uring too.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import { relayEngineSuite, relaysThrough } from "../helpers/engine-suite.ts";
import { startProxy, eventually, rssOf, runBinary, tempDir, writeConfig } from "../helpers/proxy.ts";
import { echoServer, connect, writeAll } from "../helpers/peers.ts";
import { countDataSyscalls } from "../helpers/syscalls.ts";
import { childrenOf, steadyLoad } from "../helpers/load.ts";

const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

relayEngineSuite("uring", {
  // 2 GiB pass while strace watches: the bytes are received and sent by the ring inside
  // io_uring_enter, never by a read/recv/write/send call of the process (relaying them in userspace
  // would take 65,536 of each; the few seen are the proxy's logs and timers), nor by splice.
  duringVolume(proxy) {
    const watch = countDataSyscalls(proxy.pid);
    return {
      async check() {
        const calls = await watch.stop();
        console.log(`uring: while 2 GiB passed the proxy made ${calls.copying} read/recv/write/send calls and ${calls.splice} splice calls`);
        expect(calls.copying).toBeLessThan(256);
        expect(calls.splice).toBe(0);
      },
    };
  },
  // In flight while a reader stalls: the direction's buffers (16 x 16 KiB, the receive capped by
  // the kernel; more only on kernels without the cap) and what the ring's few buffers touched.
  stalledRssBound: 4 * 1024 * 1024,
});

for (const [how, env, fdsPerPair] of [
  // Native accept: the engine accepted the client and dialled the upstream, no Bun socket exists.
  ["native accept", ENV, 2],
  // Bun accepted and dialled, then handed both over: Bun's 2 and the engine's 2 dups.
  ["handed over at connect (SWITCHYARD_NATIVE_ACCEPT=off)", { ...ENV, SWITCHYARD_NATIVE_ACCEPT: "off" }, 4],
] as const) test(`1000 idle pairs, ${how}, each verified with one echo: ${fdsPerPair} fds per pair and little memory`, async () => {
  const N = 1000;
  const echo = echoServer();
  const proxy = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`, "--relay", "uring"], { env });
  const clients: Awaited<ReturnType<typeof connect>>[] = [];
  try {
    await relaysThrough(proxy); // the engine has started and its ring is warm
    await eventually(() => proxy.accessLog().length === 1, 5_000, "first record");
    const base = readdirSync(`/proc/${proxy.pid}/fd`).length;
    const rssBase = rssOf(proxy.pid);
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
    const rssPerPair = (rssOf(proxy.pid) - rssBase) / N;
    console.log(`uring, ${how}: ${N} idle pairs, proxy fds ${base} -> ${fds} (${perPair.toFixed(3)} per pair), RSS +${Math.round(rssPerPair)} B per pair`);
    expect(perPair).toBeGreaterThanOrEqual(fdsPerPair);
    expect(perPair).toBeLessThan(fdsPerPair + 0.05); // nothing else per pair: the ring and its buffers are shared
    for (const c of clients) c.socket.end();
    const closed = await Promise.all(clients.map((c) => c.closed));
    expect(closed.filter((x) => x.error !== null)).toEqual([]);
    await eventually(() => proxy.accessLog().length === N + 1, 30_000, "every record");
    expect(proxy.accessLog().slice(1).every((r) => r.relay === "uring" && r.reason === "done" && r.bytesIn === 16 && r.bytesOut === 16)).toBe(true);
  } finally {
    for (const c of clients) c.socket.terminate();
    await proxy.stop();
    echo.stop();
  }
}, 120_000);

/** io_uring instances a process holds (its fds that are rings). */
function ringsOf(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === "anon_inode:[io_uring]") n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

test("2 workers: each its own ring; a worker killed with -9 is replaced and relays through uring, the other's pairs carry on", async () => {
  const echo = echoServer();
  const file = writeConfig({
    workers: 2, relay: "uring", drainTimeoutMs: 5000,
    listeners: [{ name: "echo", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }],
  }, tempDir());
  const p = await startProxy(["serve", "-c", file]);
  try {
    await eventually(() => childrenOf(p.pid).length === 2, 10_000, "two workers");
    await eventually(() => count(p.stderr(), "relay engine: uring") === 2, 10_000, "both workers on uring");
    // Open pairs on both workers (the kernel spreads connections over the SO_REUSEPORT sockets).
    const pairs = await Promise.all(Array.from({ length: 16 }, () => connect(p.port)));
    await Promise.all(pairs.map((c, i) => writeAll(c.socket, new TextEncoder().encode(`before ${i}`))));
    await eventually(() => pairs.every((c, i) => c.receivedText() === `before ${i}`), 10_000, "echoes");
    const workers = childrenOf(p.pid);
    for (const w of workers) expect(ringsOf(w)).toBe(1);
    expect(ringsOf(p.pid)).toBe(0); // the supervisor relays nothing

    const load = steadyLoad(p.port, 4);
    await eventually(() => load.ok() > 20, 20_000, "connections");
    process.kill(workers[0]!, "SIGKILL");
    await p.waitForLog("worker died; replacing it", 10_000);
    await eventually(() => childrenOf(p.pid).length === 2 && !childrenOf(p.pid).includes(workers[0]!), 10_000, "a replacement worker");
    await eventually(() => count(p.stderr(), "relay engine: uring") === 3, 10_000, "the replacement on uring");
    const mark = load.ok();
    await eventually(() => load.ok() > mark + 50, 20_000, "connections after the replacement");
    const { failures } = await load.stop();
    // Only connections the killed worker held can fail (at most one per load loop).
    expect(failures.length).toBeLessThanOrEqual(4);
    for (const w of childrenOf(p.pid)) expect(ringsOf(w)).toBe(1);

    // The survivor's pairs still relay; the dead worker's were cut (reset or closed by the kernel).
    await Promise.all(pairs.map((c, i) => c.socket.write(`after ${i}`)));
    await Bun.sleep(300);
    const alive = pairs.filter((c, i) => c.receivedText() === `before ${i}after ${i}`);
    expect(alive.length).toBeGreaterThan(0);
    for (const c of pairs) c.socket.end();
  } finally {
    await p.stop();
    echo.stop();
  }
}, 120_000);

const count = (text: string, needle: string) => text.split(needle).length - 1;

describe("fallbacks", () => {
  test("io_uring refused (SWITCHYARD_NATIVE_URING=off simulates it): splice, the log says which and why", async () => {
    const echo = echoServer();
    const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`, "--relay", "uring"], { env: { ...ENV, SWITCHYARD_NATIVE_URING: "off" } });
    try {
      await relaysThrough(p);
      await p.waitForLog("relay engine: splice (uring unavailable)");
      expect(p.stderr()).toContain("configured=uring");
      expect(p.stderr()).toContain('reason="refused by SWITCHYARD_NATIVE_URING=off"');
      expect(p.stderr().match(/relay engine:/g)!.length).toBe(1);
      await eventually(() => p.accessLog().length === 1, 5_000, "record");
      expect(p.accessLog()[0]!.relay).toBe("splice");
    } finally {
      await p.stop();
      echo.stop();
    }
  });

  test("library absent (SWITCHYARD_NATIVE=off): userspace relay, the log says why", async () => {
    const echo = echoServer();
    const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`, "--relay", "uring"], { env: { ...ENV, SWITCHYARD_NATIVE: "off" } });
    try {
      await relaysThrough(p);
      await p.waitForLog("relay engine: userspace (uring and splice unavailable)");
      expect(p.stderr()).toContain('reason="native library not loaded: disabled by SWITCHYARD_NATIVE=off"');
      expect(p.stderr().match(/relay engine:/g)!.length).toBe(1);
    } finally {
      await p.stop();
      echo.stop();
    }
  });

  test("switchyard version says whether uring is usable, and why not", async () => {
    expect((await runBinary(["version"])).stdout).toContain("  uring: usable");
    const off = await runBinary(["version"], { ...ENV, SWITCHYARD_NATIVE_URING: "off" });
    expect(off.stdout).toContain("  uring: not usable (refused by SWITCHYARD_NATIVE_URING=off)");
  });
});
