/**
 * The splice relay engine (native threads, splice(2) through a pipe per direction), end to end
 * through the compiled binary: the shared engine suite (test/helpers/engine-suite.ts: volume with
 * checksums and the proxy's memory flat while GiBs pass, half-close, resets, idle timeout, 1000
 * pairs, a stalled reader), then what is splice's own: 3000 idle pairs costing the proxy few fds,
 * `auto` moving a busy connection to splice, and the fallbacks when the library or splice is
 * unavailable.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { autoHandsOverOnceBusy, relayEngineSuite, relaysThrough } from "../helpers/engine-suite.ts";
import { startProxy, eventually, runBinary, type RunningProxy } from "../helpers/proxy.ts";
import { echoServer, connect } from "../helpers/peers.ts";
import { countDataSyscalls } from "../helpers/syscalls.ts";

const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

relayEngineSuite("splice", {
  // 2 GiB pass while strace watches: the bytes go socket -> pipe -> socket by splice(2) and are
  // never copied into the process, so the JS heap cannot hold them (relaying in userspace would
  // take 65,536 read and write calls; the few seen are the proxy's logs and timers).
  duringVolume(proxy) {
    const watch = countDataSyscalls(proxy.pid);
    return {
      async check() {
        const calls = await watch.stop();
        console.log(`splice: while 2 GiB passed the proxy made ${calls.copying} read/recv/write/send calls and ${calls.splice} splice calls`);
        expect(calls.copying).toBeLessThan(256);
        expect(calls.splice).toBeGreaterThan(2 * 2048); // 2 GiB in all, each byte in and out of a pipe of at most 1 MiB
      },
    };
  },
  // In flight while a reader stalls: kernel socket buffers and one pipe (≤ pipe-max-size), none of
  // it in the proxy's RSS.
  stalledRssBound: 4 * 1024 * 1024,
});

function spliceProxy(backendPort: number, extra: string[] = []): Promise<RunningProxy> {
  return startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${backendPort}`, "--relay", "splice", ...extra]);
}

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

describe("fallbacks", () => {

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

  // auto gives natively acceptable tcp listeners to the uring engine (src/relay/engine.ts); every
  // connection Bun accepts (here: native accept turned off, or no io_uring) starts in userspace.
  for (const [how, env] of [["no io_uring (SWITCHYARD_NATIVE_URING=off)", { SWITCHYARD_NATIVE_URING: "off" }], ["Bun accepts (SWITCHYARD_NATIVE_ACCEPT=off)", { SWITCHYARD_NATIVE_ACCEPT: "off" }]] as const) {
    test(`relay auto, ${how}: short exchanges stay in userspace, a busy connection moves to splice mid-stream`, async () => {
      const echo = echoServer();
      const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`], { env: { ...ENV, ...env } });
      try {
        await p.waitForLog("relay engine: splice configured=auto");
        await autoHandsOverOnceBusy(p);
      } finally {
        await p.stop();
        echo.stop();
      }
    });
  }

  test("switchyard version says whether splice is usable, and why not", async () => {
    expect((await runBinary(["version"])).stdout).toContain("  splice: usable");
    const off = await runBinary(["version"], { ...ENV, SWITCHYARD_NATIVE: "off" });
    expect(off.stdout).toContain("  splice: not usable (native library not loaded: disabled by SWITCHYARD_NATIVE=off)");
  });
});
