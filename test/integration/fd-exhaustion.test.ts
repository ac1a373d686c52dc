/**
 * Out of file descriptors (RLIMIT_NOFILE 64, hundreds of clients): the proxy stops accepting instead
 * of spinning on accept4() = EMFILE, says so once, counts it, keeps relaying for the connections it
 * has, and accepts again once clients close. In one process (native sockets), without the native
 * library (sockets bound by Bun) and with workers (the supervisor's sockets).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startProxy, writeConfig, eventually, type RunningProxy } from "../helpers/proxy.ts";
import { connect, echoServer, type Client, type Server } from "../helpers/peers.ts";
import { childrenOf } from "../helpers/load.ts";

const FD_LIMIT = 64;
const CLIENTS = 300;
const WARNING = "out of file descriptors";

let echo: Server;
beforeAll(() => { echo = echoServer(); });
afterAll(() => echo?.stop());

/** User + system CPU time of a process, in clock ticks (/proc/PID/stat fields 14 and 15). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

const CLOCK_TICKS = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

async function echoes(c: Client, text: string): Promise<void> {
  const before = c.receivedText().length;
  c.socket.write(text);
  await eventually(() => c.receivedText().slice(before) === text, 5_000, `echo of ${text}`);
}

async function eventuallyAsync(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
}

async function exhaust(args: string[], env: Record<string, string> = {}): Promise<void> {
  const config = writeConfig({
    admin: { listen: "127.0.0.1:0" },
    listeners: [{ name: "t", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }],
  });
  // prlimit execs the proxy: the pid is the proxy's.
  const p: RunningProxy = await startProxy([`--nofile=${FD_LIMIT}:${FD_LIMIT}`, "dist/switchyard", "serve", "--relay", "userspace", ...args, "-c", config], {
    binary: "/usr/bin/prlimit", cwd: `${import.meta.dir}/../..`, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
  });
  const admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);
  const clients: Client[] = [];
  try {
    // The kernel completes every handshake (the backlog is 4096); the proxy accepts what its fds allow.
    // Without the native library a pause closes the socket (Bun binds it again on resume): clients
    // that come meanwhile are refused or reset, which is what that fallback promises.
    for (let i = 0; i < CLIENTS; i++) {
      try {
        clients.push(await connect(p.port));
      } catch (e) {
        if (!env.SWITCHYARD_NATIVE || !["ECONNREFUSED", "ECONNRESET"].includes((e as { code?: string }).code ?? "")) throw e;
      }
    }
    await p.waitForLog(WARNING);
    const processes = [p.pid, ...childrenOf(p.pid)];
    const before = processes.reduce((n, pid) => n + cpuTicks(pid), 0);
    const started = performance.now();
    await Bun.sleep(2000);
    const used = processes.reduce((n, pid) => n + cpuTicks(pid), 0) - before;
    const cores = used / CLOCK_TICKS / ((performance.now() - started) / 1000);
    // Spinning on accept4() keeps a core busy (0.9–1.0 per process); paused it is near 0.
    expect(cores).toBeLessThan(0.5 * (processes.length > 1 ? processes.length - 1 : 1));

    // The connections accepted before the pause are served: the first client was accepted first.
    await echoes(clients[0]!, "still relaying");
    const warnings = p.stderr().split("\n").filter((l) => l.includes(WARNING));
    expect(warnings.length).toBe(processes.length > 1 ? processes.length - 1 : 1); // once per accepting process
    expect(warnings[0]).toContain("reason=EMFILE");
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    expect(Number(/^switchyard_accept_paused_total\{listener="t",reason="EMFILE"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);

    for (const c of clients.splice(0)) c.socket.end();
    // Until the backlog of closed clients drains (and, without the library, the socket is bound
    // again) a new client may be refused or queued: retry until one is served.
    let fresh: Client | null = null;
    await eventuallyAsync(async () => {
      fresh?.socket.end();
      fresh = await connect(p.port).catch(() => null);
      return fresh !== null && (await echoes(fresh, "accepting again").then(() => true, () => false));
    }, 30_000, "a new client served");
    (fresh as Client | null)?.socket.end();
  } finally {
    for (const c of clients) c.socket.end();
    await p.stop();
  }
}

describe(`RLIMIT_NOFILE ${FD_LIMIT}, ${CLIENTS} clients`, () => {
  test("one process, native sockets: pauses accepting, warns once, serves what it has, accepts again", () => exhaust([]), 60_000);
  test("sockets bound by Bun (no native library): the same", () => exhaust([], { SWITCHYARD_NATIVE: "off" }), 60_000);
  test("two workers: each pauses on its own", () => exhaust(["--workers", "2"]), 60_000);
});
