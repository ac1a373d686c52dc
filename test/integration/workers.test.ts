/**
 * The process model: a supervisor and N workers on the supervisor's sockets. A long transfer keeps
 * going across 20 reloads and across a worker being killed; a steady load of new connections sees no
 * refused or reset connection across a worker's death, a reload, a graceful stop of one worker and a
 * binary upgrade; an invalid reload is refused with its position while the old configuration serves;
 * a reload that removes a listener closes its port.
 */
import { expect, test } from "bun:test";
import { copyFileSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { BINARY, eventually, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { connect, echoServer } from "../helpers/peers.ts";
import { childrenOf, steadyLoad } from "../helpers/load.ts";

const adminPort = (p: RunningProxy) => Number([...p.stderr().matchAll(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/g)].at(-1)![1]);
const count = (text: string, needle: string) => text.split(needle).length - 1;

const config = (echoPort: number, listen = ["127.0.0.1:0"]) => ({
  workers: 2,
  admin: { listen: "127.0.0.1:0" },
  log: { access: "off" },
  drainTimeoutMs: 5000,
  listeners: [{ name: "echo", listen, routes: [{ name: "r", upstreams: [`127.0.0.1:${echoPort}`] }] }],
});

/**
 * A long echo conversation: a 16 KiB chunk every 5 ms until stopped, then checks every byte came
 * back in order.
 */
async function longTransfer(port: number) {
  const sent: Uint8Array[] = [];
  const received: Uint8Array[] = [];
  let closed = false;
  const socket = await Bun.connect({
    hostname: "127.0.0.1", port, allowHalfOpen: true,
    socket: { data(_s: Socket<undefined>, d: Uint8Array) { received.push(d); }, end(s: Socket<undefined>) { s.end(); }, close() { closed = true; } },
  });
  let i = 0;
  const timer = setInterval(() => {
    const chunk = new Uint8Array(16 * 1024).fill(i++ & 0xff);
    sent.push(chunk);
    socket.write(chunk); // 16 KiB every 5 ms: far below what loopback takes, so write() takes it all
  }, 5);
  return {
    localPort: socket.localPort,
    closed: () => closed,
    async finish(): Promise<{ sent: number; received: number; same: boolean; closedEarly: boolean }> {
      clearInterval(timer);
      const closedEarly = closed;
      const total = sent.reduce((n, c) => n + c.length, 0);
      await eventually(() => received.reduce((n, c) => n + c.length, 0) >= total || closed, 20_000, "the echo of every byte");
      socket.end();
      const got = Buffer.concat(received);
      return { sent: total, received: got.length, same: got.equals(Buffer.concat(sent)), closedEarly };
    },
  };
}

/** The worker pid that holds the proxy side of the client connection from `clientPort` (via ss -tnp). */
async function workerHolding(listenPort: number, clientPort: number): Promise<number> {
  const out = await new Response(Bun.spawn(["ss", "-tnpH", "state", "established", `( sport = :${listenPort} and dport = :${clientPort} )`]).stdout).text();
  const m = /pid=(\d+)/.exec(out);
  if (!m) throw new Error(`no process holds 127.0.0.1:${listenPort} <- :${clientPort}: ${out}`);
  return Number(m[1]);
}

test("workers: a long transfer carries on across 20 reloads and a killed worker; new connections see no failure", async () => {
  const echo = echoServer();
  const file = writeConfig(config(echo.port), tempDir());
  let p: RunningProxy | null = null;
  try {
    p = await startProxy(["serve", "-c", file]);
    const supervisor = p.pid;
    expect(p.stderr()).toContain("workers=2");
    await eventually(() => childrenOf(supervisor).length === 2, 10_000, "two workers");
    const transfer = await longTransfer(p.port);
    const load = steadyLoad(p.port, 4);

    for (let i = 1; i <= 20; i++) {
      process.kill(supervisor, "SIGHUP");
      await eventually(() => count(p!.stderr(), "SIGHUP: configuration reloaded") === i, 20_000, `reload ${i}`);
      await Bun.sleep(50); // spread the reloads over the transfer's life
    }

    // Kill the worker that does not carry the transfer; the one that does must not notice.
    const holder = await workerHolding(p.port, transfer.localPort);
    const other = childrenOf(supervisor).find((pid) => pid !== holder)!;
    expect(other).toBeGreaterThan(0);
    const before = load.ok();
    process.kill(other, "SIGKILL");
    await p.waitForLog("worker died; replacing it", 10_000);
    await eventually(() => childrenOf(supervisor).length === 2 && !childrenOf(supervisor).includes(other), 10_000, "a replacement worker");
    await eventually(() => load.ok() > before + 50, 20_000, "connections after the replacement");

    const result = await transfer.finish();
    const { failures, ok } = await load.stop();
    expect(result.closedEarly).toBe(false);
    expect(result.sent).toBeGreaterThan(0);
    expect(result.received).toBe(result.sent);
    expect(result.same).toBe(true);
    // Only connections the killed worker had already accepted can fail (at most one per load loop);
    // none is refused: its socket stayed open and queued new ones for the replacement.
    expect(failures.length).toBeLessThanOrEqual(4);
    for (const f of failures) expect(f).toStartWith("closed after");
    expect(ok).toBeGreaterThan(100);
    expect(await p.stop()).toBe(0);
  } finally {
    await p?.stop();
    echo.stop();
  }
}, 120_000);

test("workers: no refused or reset connection across a reload, a worker's graceful stop and a binary upgrade", async () => {
  const echo = echoServer();
  const dir = tempDir();
  const file = writeConfig(config(echo.port), dir);
  // The running binary is a copy; the upgrade renames another copy over it, as a package manager does.
  const binary = join(dir, "switchyard");
  copyFileSync(BINARY, binary);
  let p: RunningProxy | null = null;
  let upgraded = 0;
  try {
    p = await startProxy(["serve", "-c", file], { binary });
    const supervisor = p.pid;
    const admin = adminPort(p);
    await eventually(() => childrenOf(supervisor).length === 2, 10_000, "two workers");
    const load = steadyLoad(p.port, 4);
    await eventually(() => load.ok() > 50, 20_000, "connections");

    const reload = await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST" });
    expect(reload.status).toBe(200);
    let mark = load.ok();
    await eventually(() => load.ok() > mark + 50, 20_000, "connections after the reload");

    // An operator stops one worker: it drains while its replacement takes its socket.
    const [first] = childrenOf(supervisor);
    process.kill(first!, "SIGTERM");
    await p.waitForLog("worker draining on a signal; starting its replacement", 10_000);
    await eventually(() => childrenOf(supervisor).length === 2 && !childrenOf(supervisor).includes(first!), 20_000, "the stopped worker replaced");
    mark = load.ok();
    await eventually(() => load.ok() > mark + 50, 20_000, "connections after the graceful stop");

    copyFileSync(BINARY, join(dir, "switchyard.new"));
    renameSync(join(dir, "switchyard.new"), binary);
    process.kill(supervisor, "SIGUSR2");
    await p.waitForLog("upgrade: the new binary is serving", 30_000);
    upgraded = Number([...p.stderr().matchAll(/switchyard ready .* pid=(\d+)/g)].at(-1)![1]);
    expect(upgraded).not.toBe(supervisor);
    expect(await p.proc.exited).toBe(0); // the old supervisor drained and left
    mark = load.ok();
    await eventually(() => load.ok() > mark + 50, 20_000, "connections after the upgrade");
    // The admin API moved to the new supervisor (port 0 in the config: a new port).
    expect((await fetch(`http://127.0.0.1:${adminPort(p)}/health`)).status).toBe(200);

    const { failures, ok } = await load.stop();
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(200);
  } finally {
    if (upgraded > 0) {
      process.kill(upgraded, "SIGTERM");
      await eventually(() => !isAlive(upgraded), 15_000, "the upgraded supervisor to stop").catch(() => process.kill(upgraded, "SIGKILL"));
    }
    await p?.stop();
    echo.stop();
  }
}, 120_000);

test("workers: an invalid reload is refused with FILE:LINE:COL and the old configuration keeps serving; a new address is served", async () => {
  const echo = echoServer();
  const dir = tempDir();
  const file = writeConfig(config(echo.port), dir);
  let p: RunningProxy | null = null;
  try {
    p = await startProxy(["serve", "-c", file]);
    const admin = adminPort(p);
    writeFileSync(file, `{\n  "workers": 2,\n  "listeners": [{ "listen": ["127.0.0.1:0"], "routes": [{ "upstreams": ["127.0.0.1:1"] }], "bogus": 1 }]\n}`);
    const res = await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST" });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { ok: boolean; errors: string[] };
    expect(body.errors[0]).toStartWith(`${file}:3:92: unknown key "bogus"`);
    expect(p.stderr()).toContain(`${file}:3:92`);
    const load = steadyLoad(p.port, 2);
    await eventually(() => load.ok() >= 20, 20_000, "the old configuration serving");
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics.json`)).json() as { reloads: { failed: number } };
    expect(metrics.reloads.failed).toBeGreaterThanOrEqual(1);

    // A second address: new sockets, a new set of workers, the old ones drain.
    const spare = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const extra = spare.port;
    spare.stop(true);
    writeFileSync(file, JSON.stringify(config(echo.port, ["127.0.0.1:0", `127.0.0.1:${extra}`])));
    const ok = await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST" });
    expect(await ok.json()).toEqual({ ok: true });
    const both = steadyLoad(extra, 2);
    await eventually(() => both.ok() >= 20, 20_000, "the new address serving");
    const [a, b] = await Promise.all([load.stop(), both.stop()]);
    expect(a.failures).toEqual([]);
    expect(b.failures).toEqual([]);
    expect(await p.stop()).toBe(0);
  } finally {
    await p?.stop();
    echo.stop();
  }
}, 120_000);

test("workers: a reload that removes a listener closes its port: connections are refused and no process holds it", async () => {
  const echo = echoServer();
  const dir = tempDir();
  const file = writeConfig(config(echo.port), dir);
  let p: RunningProxy | null = null;
  try {
    p = await startProxy(["serve", "-c", file]);
    const admin = adminPort(p);
    const reload = async () => expect(await (await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST" })).json()).toEqual({ ok: true });
    const spare = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const extra = spare.port;
    spare.stop(true);
    const two = config(echo.port);
    two.listeners.push({ name: "extra", listen: [`127.0.0.1:${extra}`], routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] });
    writeFileSync(file, JSON.stringify(two));
    await reload();
    const served = await connect(extra);
    served.socket.write("hi");
    await eventually(() => served.receivedText() === "hi", 10_000, "the added listener serving");
    served.socket.end();
    await served.closed;

    writeFileSync(file, JSON.stringify(config(echo.port)));
    await reload();
    // The old workers stop listening as they begin to drain; after that nothing may hold the port.
    const listeningOn = async () => (await new Response(Bun.spawn(["ss", "-ltnpH", `( sport = :${extra} )`]).stdout).text()).trim();
    const deadline = Date.now() + 15_000;
    while ((await listeningOn()) !== "" && Date.now() < deadline) await Bun.sleep(100);
    expect(await listeningOn()).toBe("");
    const refused = await connect(extra).then((c) => { c.socket.end(); return "connected"; }, (e) => String(e.code ?? e));
    expect(refused).toBe("ECONNREFUSED");
    // The listener that stayed still serves.
    const kept = steadyLoad(p.port, 2);
    await eventually(() => kept.ok() >= 20, 20_000, "the remaining listener serving");
    expect((await kept.stop()).failures).toEqual([]);
  } finally {
    await p?.stop();
    echo.stop();
  }
}, 120_000);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("workers: SIGHUP reopens the access log in every worker (logrotate)", async () => {
  const echo = echoServer();
  const dir = tempDir();
  const log = join(dir, "access.log");
  const file = writeConfig({ ...config(echo.port), log: { access: log } }, dir);
  let p: RunningProxy | null = null;
  try {
    p = await startProxy(["serve", "-c", file]);
    const records = (path: string) => { try { return readFileSync(path, "utf8").split("\n").filter(Boolean).length; } catch { return 0; } };
    let load = steadyLoad(p.port, 2);
    await eventually(() => load.ok() >= 40, 20_000, "connections");
    await load.stop();
    await eventually(() => records(log) >= 40, 10_000, "records in the first file");
    renameSync(log, `${log}.1`);
    process.kill(p.pid, "SIGHUP");
    await eventually(() => count(p!.stderr(), "SIGHUP: configuration reloaded") === 1, 20_000, "the reload");
    load = steadyLoad(p.port, 2);
    await eventually(() => load.ok() >= 40, 20_000, "connections after the rotation");
    const { failures, ok } = await load.stop();
    expect(failures).toEqual([]);
    // Every record after the rotation lands in the new file: both workers reopened it.
    await eventually(() => records(log) >= ok, 10_000, "records in the new file");
    expect(records(log)).toBe(ok);
  } finally {
    await p?.stop();
    echo.stop();
  }
}, 60_000);

test("workers: SIGTERM drains every worker: open connections finish, new ones are refused, exit 0", async () => {
  const echo = echoServer();
  let p: RunningProxy | null = null;
  try {
    p = await startProxy(["serve", "-c", writeConfig(config(echo.port), tempDir())]);
    const open = await connect(p.port);
    open.socket.write("before");
    await eventually(() => open.receivedText() === "before", 5000, "echo");
    process.kill(p.pid, "SIGTERM");
    await p.waitForLog("SIGTERM: draining");
    const port = p.port;
    await eventually(() => (p!.stderr().match(/: draining worker=\d+ open=/g) ?? []).length >= 2, 10_000, "both workers draining");
    const refused = await connect(port).then((c) => c.closed, (e) => ({ error: String(e.code ?? e) }));
    expect(refused.error).toBe("ECONNREFUSED");
    open.socket.write(" during");
    await eventually(() => open.receivedText() === "before during", 5000, "echo while draining");
    expect(p.proc.exitCode).toBeNull();
    open.socket.end();
    expect(await p.proc.exited).toBe(0);
  } finally {
    await p?.stop();
    echo.stop();
  }
}, 60_000);

test("workers without the native library: one process, said once at start, still serving", async () => {
  const echo = echoServer();
  let p: RunningProxy | null = null;
  try {
    p = await startProxy(["serve", "-c", writeConfig(config(echo.port), tempDir())], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SWITCHYARD_NATIVE: "off" } });
    expect(count(p.stderr(), "workers need the native library")).toBe(1);
    expect(childrenOf(p.pid)).toEqual([]);
    const load = steadyLoad(p.port, 2);
    await eventually(() => load.ok() >= 20, 20_000, "connections");
    expect((await load.stop()).failures).toEqual([]);
  } finally {
    await p?.stop();
    echo.stop();
  }
}, 60_000);
