/**
 * The sockmap relay engine (a BPF sk_skb verdict program redirects each segment to the peer socket;
 * native/src/sockmap.zig), end to end through the compiled binary: the shared engine suite
 * (test/helpers/engine-suite.ts; its volume test one way at a time, see below), the proof that the
 * payload never reaches the proxy process (strace counts no copying syscall while GiBs pass), the
 * reset of a pair whose directions are both busy while its readers lag, `auto` never taking
 * sockmap, a unix-socket upstream going to splice instead, and the fallbacks when sockmap is
 * refused or the library is absent. Needs CAP_BPF and CAP_NET_ADMIN (CI runs as root); where the
 * host refuses, the fallback tests still run and the rest fail loudly.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Socket } from "bun";
import { relayEngineSuite, relaysThrough } from "../helpers/engine-suite.ts";
import { startProxy, eventually, runBinary, tempDir } from "../helpers/proxy.ts";
import { countDataSyscalls } from "../helpers/syscalls.ts";
import { connect, echoServer, serve, writeAll } from "../helpers/peers.ts";
import { twoWayBackend, twoWayClient } from "../helpers/stream.ts";

// sockmap is off unless asked for (src/native/sockmap.ts says why); these tests ask.
const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", SWITCHYARD_NATIVE_SOCKMAP: "experimental" };

relayEngineSuite("sockmap", {
  // In flight while a reader stalls: the redirect backlog up to HAND_BACK_AT, then the pair is
  // handed back to userspace (native/src/sockmap.zig) and TCP holds the rest; none of it in the
  // proxy's RSS.
  stalledRssBound: 4 * 1024 * 1024,
  bothWaysAtOnce: false,
  env: ENV,
});

const LOADGEN = join(import.meta.dir, "../../bench/loadgen/zig-out/bin/loadgen");

/** Resolves once something accepts connections on `port` (a spawned server has bound it). */
async function listening(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then((s) => (s.end(), true), () => false);
    if (ok) return;
    await Bun.sleep(10);
  }
  throw new Error(`nothing listens on ${port}`);
}

test("the payload never reaches the proxy: GiBs of 64 KiB requests and echoes pass without one copying syscall", async () => {
  // bench/loadgen in request/response mode with 64 KiB messages: self-clocked (one message in flight
  // per connection), so no reader falls behind and no pair is handed back; strace counts the
  // proxy's read/recv/write/send and splice calls on every thread meanwhile. (With 1 MiB messages
  // the kernel sometimes delivers bytes twice: bench/sockmap-duplicates.sh.)
  const echoPort = 20_000 + Math.floor(Math.random() * 10_000);
  const echo = Bun.spawn([LOADGEN, "serve", "--listen", `127.0.0.1:${echoPort}`, "--mode", "echo", "--threads", "1"], { stdout: "ignore", stderr: "ignore" });
  const p = await startProxy([...serveArgs(echoPort, "sockmap"), "--log-level", "debug"], { env: ENV });
  try {
    await listening(echoPort);
    const watch = countDataSyscalls(p.pid);
    const run = Bun.spawn([LOADGEN, "rr", "--target", `127.0.0.1:${p.port}`, "--connections", "4", "--size", "65536", "--duration", "3", "--warmup", "0", "--threads", "1", "--json"], { stdout: "pipe" });
    const report = JSON.parse(await new Response(run.stdout).text()) as { bytes_sent: number; bytes_received: number; errors_total: number; errors: Record<string, number> };
    const calls = await watch.stop();
    const moved = report.bytes_sent + report.bytes_received;
    console.log(`sockmap: ${(moved / 2 ** 30).toFixed(2)} GiB passed; the proxy made ${calls.copying} read/recv/write/send calls and ${calls.splice} splice calls`, calls.byName);
    if (report.errors_total) console.log("loadgen errors:", report.errors, "proxy log:", p.stderr().split("\n").filter((l) => / (WARN|ERROR) /.test(l)).slice(0, 5));
    expect(report.errors_total).toBe(0);
    expect(moved).toBeGreaterThan(256 * 1024 * 1024);
    // Relaying it in userspace would take a read and a write per 64 KiB at least; the few seen are
    // the proxy's logs and timers.
    expect(calls.copying).toBeLessThan(Math.min(256, moved / 65536 / 16));
    expect(calls.splice).toBe(0);
    expect(p.stderr()).not.toContain("handed a pair back");
  } finally {
    await p.stop();
    echo.kill();
    await echo.exited;
  }
}, 60_000);

test("both directions busy while readers lag: the pair is reset (relay_overflow), not left to fill kernel memory", async () => {
  // Two Bun peers each write 1 GiB at once: their single thread writes far faster than it reads,
  // so both redirect backlogs grow; the kernel cannot hand such a pair back safely (sockmap.zig).
  const { server: backend } = twoWayBackend(1024 ** 3, (h) => serve(h as any));
  const p = await startProxy(serveArgs(backend.port, "sockmap"), { env: ENV });
  try {
    const client = await twoWayClient(p.port, 1024 ** 3);
    await eventually(() => client.done, 60_000, "the client to be closed");
    await eventually(() => p.accessLog().length === 1, 5_000, "access log");
    const rec = p.accessLog()[0]!;
    expect(rec.reason).toBe("relay_overflow");
    // Reset after the backlog reached RESET_AT (32 MiB) plus a scan period, not after the streams.
    expect(Number(rec.bytesIn) + Number(rec.bytesOut)).toBeLessThan(512 * 1024 * 1024);
    expect(client.received).toBeLessThan(1024 ** 3);
  } finally {
    await p.stop();
    backend.stop();
  }
}, 90_000);

function serveArgs(port: number, relay?: string): string[] {
  return ["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${port}`, ...(relay ? ["--relay", relay] : [])];
}

test("relay auto takes splice where both work (src/relay/engine.ts says why)", async () => {
  const echo = echoServer();
  const p = await startProxy(serveArgs(echo.port), { env: ENV });
  try {
    await p.waitForLog("relay engine: splice configured=auto");
  } finally {
    await p.stop();
    echo.stop();
  }
});

test("relay auto never picks sockmap: without splice (and io_uring), a busy connection stays in userspace (src/relay/engine.ts says why)", async () => {
  const echo = echoServer();
  const p = await startProxy(serveArgs(echo.port), { env: { ...ENV, SWITCHYARD_NATIVE_SPLICE: "off", SWITCHYARD_NATIVE_URING: "off" } });
  try {
    await p.waitForLog("relay engine: userspace (splice unavailable) configured=auto");
    const big = await connect(p.port);
    const chunk = new Uint8Array(1024 * 1024).fill(7);
    await writeAll(big.socket, chunk);
    await eventually(() => big.received().length === chunk.length, 10_000, "echo");
    big.socket.end();
    await big.closed;
    await eventually(() => p.accessLog().length === 1, 5000, "access log");
    expect(p.accessLog()[0]).toMatchObject({ relay: "userspace", bytesIn: chunk.length });
  } finally {
    await p.stop();
    echo.stop();
  }
});

test("a unix-socket upstream cannot go to sockmap: splice relays it", async () => {
  const path = join(tempDir(), "echo.sock");
  const server = Bun.listen({
    unix: path,
    socket: { data(s: Socket<any>, d: Uint8Array) { s.write(d); }, end(s: Socket<any>) { s.end(); } },
  } as any);
  const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `unix:${path}`, "--relay", "sockmap"], { env: ENV });
  try {
    await relaysThrough(p);
    await eventually(() => p.accessLog().length === 1, 5000, "access log");
    expect(p.accessLog()[0]).toMatchObject({ relay: "splice", bytesIn: 11, bytesOut: 11, reason: "done" });
  } finally {
    await p.stop();
    server.stop(true);
  }
});

test("TCP_SOCKMAP_ENABLED=true selects sockmap", async () => {
  const echo = echoServer();
  const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`], { env: { ...ENV, TCP_SOCKMAP_ENABLED: "true" } });
  try {
    await p.waitForLog("relay engine: sockmap configured=sockmap");
    await relaysThrough(p);
    await eventually(() => p.accessLog().length === 1, 5000, "access log");
    expect(p.accessLog()[0]!.relay).toBe("sockmap");
  } finally {
    await p.stop();
    echo.stop();
  }
});

describe("fallbacks", () => {
  const cases: [string, Record<string, string>, string, string, string][] = [
    ["sockmap not asked for (SWITCHYARD_NATIVE_SOCKMAP unset): splice", { SWITCHYARD_NATIVE_SOCKMAP: "" },
      "relay engine: splice (sockmap unavailable)", 'reason="off by default: the kernel\'s redirect delivered bytes twice', "splice"],
    ["sockmap refused (SWITCHYARD_NATIVE_SOCKMAP=off simulates it): splice", { SWITCHYARD_NATIVE_SOCKMAP: "off" },
      "relay engine: splice (sockmap unavailable)", 'reason="refused by SWITCHYARD_NATIVE_SOCKMAP=off"', "splice"],
    ["sockmap and splice refused: userspace", { SWITCHYARD_NATIVE_SOCKMAP: "off", SWITCHYARD_NATIVE_SPLICE: "off" },
      "relay engine: userspace (sockmap and splice unavailable)", 'sockmap="refused by SWITCHYARD_NATIVE_SOCKMAP=off"', "userspace"],
    ["library absent (SWITCHYARD_NATIVE=off): userspace", { SWITCHYARD_NATIVE: "off" },
      "relay engine: userspace (sockmap and splice unavailable)", 'sockmap="native library not loaded: disabled by SWITCHYARD_NATIVE=off"', "userspace"],
  ];
  for (const [name, env, line, reason, relay] of cases) {
    test(`--relay sockmap, ${name}; traffic flows, the log says which engine and why, once`, async () => {
      const echo = echoServer();
      const p = await startProxy(serveArgs(echo.port, "sockmap"), { env: { ...ENV, ...env } });
      try {
        await relaysThrough(p);
        await relaysThrough(p);
        expect(p.stderr()).toContain(line);
        expect(p.stderr()).toContain(reason);
        expect(p.stderr().match(/relay engine:/g)!.length).toBe(1);
        await eventually(() => p.accessLog().length === 2, 5000, "access log");
        expect(p.accessLog().map((r) => r.relay)).toEqual([relay, relay]);
      } finally {
        await p.stop();
        echo.stop();
      }
    });
  }

  test("switchyard version says whether sockmap is usable, and why not", async () => {
    expect((await runBinary(["version"], ENV)).stdout).toContain("  sockmap: usable");
    const unasked = await runBinary(["version"]);
    expect(unasked.stdout).toContain("  sockmap: not usable (off by default: ");
    const off = await runBinary(["version"], { ...ENV, SWITCHYARD_NATIVE_SOCKMAP: "off" });
    expect(off.stdout).toContain("  sockmap: not usable (refused by SWITCHYARD_NATIVE_SOCKMAP=off)");
    const none = await runBinary(["version"], { ...ENV, SWITCHYARD_NATIVE: "off" });
    expect(none.stdout).toContain("  sockmap: not usable (native library not loaded: disabled by SWITCHYARD_NATIVE=off)");
  });
});
