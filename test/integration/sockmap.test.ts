/**
 * The sockmap relay engine (a BPF sk_skb verdict program redirects each segment to the peer socket;
 * native/src/sockmap.zig), end to end through the compiled binary: the shared engine suite
 * (test/helpers/engine-suite.ts), with, during the 1 GiB each way, the proof that the payload never
 * reaches the proxy process (its read/write syscall byte counters in /proc/PID/io stay flat); then
 * `auto` preferring splice, and moving a busy connection to sockmap where splice is refused, a unix-socket upstream going to splice instead, and
 * the fallbacks when sockmap is refused or the library is absent. Needs CAP_BPF and CAP_NET_ADMIN
 * (CI runs as root); where the host refuses, the fallback tests still run and the rest fail loudly.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { autoHandsOverOnceBusy, relayEngineSuite, relaysThrough } from "../helpers/engine-suite.ts";
import { startProxy, eventually, runBinary, tempDir } from "../helpers/proxy.ts";
import { echoServer } from "../helpers/peers.ts";

const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

const DATA_SYSCALLS = "read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg,splice";

/**
 * Counts the proxy's data-moving syscalls (the read, recv, write, send and splice families, every
 * thread) with strace from now until check(). Relaying N bytes in userspace takes at least N/64 KiB
 * reads and as many writes, and splice at least N/1 MiB calls each way; the sockmap engine makes
 * none of them (its thread reads counters and tcp_info). /proc/PID/io cannot say this: its
 * rchar/wchar do not count socket send/recv.
 */
function dataSyscalls(pid: number): { stop(): Promise<number> } {
  const out = join(tempDir(), "strace.txt");
  const strace = Bun.spawn(["strace", "-f", "-c", "-o", out, "-e", `trace=${DATA_SYSCALLS}`, "-p", String(pid)], { stderr: "ignore" });
  return {
    async stop() {
      strace.kill("SIGINT");
      await strace.exited;
      // No such syscall at all: strace writes no table.
      const total = /^\s*100\.00\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$/m.exec(readFileSync(out, "utf8"));
      return total ? Number(total[1]) : 0;
    },
  };
}

relayEngineSuite("sockmap", {
  // 2 GiB pass while strace watches; the splice tail of a pair given back at the end (a paused
  // source that got its FIN: native/src/sockmap.zig) may add a few calls, a relay of the stream
  // would add thousands.
  duringVolume(proxy) {
    const watch = dataSyscalls(proxy.pid);
    return {
      async check() {
        const calls = await watch.stop();
        console.log(`sockmap: the proxy made ${calls} read/recv/write/send/splice calls while 2 GiB passed`);
        expect(calls).toBeLessThan(512);
      },
    };
  },
  // In flight while a reader stalls: kernel socket buffers, and at most about PAUSE_AT plus a
  // tick's worth in the redirect backlog; none of it in the proxy's RSS.
  stalledRssBound: 4 * 1024 * 1024,
});

function serveArgs(port: number, relay?: string): string[] {
  return ["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${port}`, ...(relay ? ["--relay", relay] : [])];
}

test("relay auto prefers splice where both work (measured faster; src/relay/engine.ts AUTO_ORDER)", async () => {
  const echo = echoServer();
  const p = await startProxy(serveArgs(echo.port));
  try {
    await p.waitForLog("relay engine: splice configured=auto");
  } finally {
    await p.stop();
    echo.stop();
  }
});

test("relay auto without splice: short exchanges stay in userspace, a busy connection moves to sockmap mid-stream", async () => {
  const echo = echoServer();
  const p = await startProxy(serveArgs(echo.port), { env: { ...ENV, SWITCHYARD_NATIVE_SPLICE: "off" } });
  try {
    await p.waitForLog("relay engine: sockmap (splice unavailable) configured=auto");
    await autoHandsOverOnceBusy(p, "sockmap");
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
  const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `unix:${path}`, "--relay", "sockmap"]);
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
    expect((await runBinary(["version"])).stdout).toContain("  sockmap: usable");
    const off = await runBinary(["version"], { ...ENV, SWITCHYARD_NATIVE_SOCKMAP: "off" });
    expect(off.stdout).toContain("  sockmap: not usable (refused by SWITCHYARD_NATIVE_SOCKMAP=off)");
    const none = await runBinary(["version"], { ...ENV, SWITCHYARD_NATIVE: "off" });
    expect(none.stdout).toContain("  sockmap: not usable (native library not loaded: disabled by SWITCHYARD_NATIVE=off)");
  });
});
