/**
 * Changing a running proxy: SIGHUP and POST /reload apply a valid configuration to new connections
 * while established ones carry on, and refuse an invalid one with FILE:LINE:COL, keeping the old.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startProxy, tempDir, writeConfig, eventually, type RunningProxy } from "../helpers/proxy.ts";
import { connect, serve, type Server } from "../helpers/peers.ts";
import { newSide, streamingBackend } from "../helpers/stream.ts";

/** A backend that answers every chunk with its own name, so a test can tell backends apart. */
function namedBackend(name: string): Server {
  return serve({ data(s: any) { s.write(name); }, end(s: any) { s.end(); } } as any);
}

async function ask(port: number): Promise<string> {
  const c = await connect(port);
  c.socket.write("who?");
  await eventually(() => c.receivedText().length > 0, 5000, "an answer");
  const answer = c.receivedText();
  c.socket.end();
  await c.closed;
  return answer;
}

const config = (listen: string[], backendPort: number) => ({
  admin: { listen: "127.0.0.1:0" },
  log: { access: "off" },
  listeners: [{ name: "edge", listen, routes: [{ name: "r", upstreams: [`127.0.0.1:${backendPort}`] }] }],
});

test("reload: new connections follow the new file, old ones carry on, a broken file is refused", async () => {
  const blue = namedBackend("blue");
  const green = namedBackend("green");
  const dir = tempDir();
  const file = writeConfig(config(["127.0.0.1:0"], blue.port), dir);
  let p: RunningProxy | null = null;
  try {
    p = await startProxy(["serve", "--relay", "userspace", "-c", file]);
    const port = p.port;
    const admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);
    expect(await ask(port)).toBe("blue");

    const established = await connect(port);
    established.socket.write("1");
    await eventually(() => established.receivedText() === "blue", 5000, "first answer");

    // The same address ("127.0.0.1:0") keeps its socket and port across the reload.
    writeFileSync(file, JSON.stringify(config(["127.0.0.1:0"], green.port)));
    process.kill(p.pid, "SIGHUP");
    await p.waitForLog("SIGHUP: configuration reloaded");
    expect(await ask(port)).toBe("green");
    established.socket.write("2");
    await eventually(() => established.receivedText() === "blueblue", 5000, "the old connection still on blue");

    writeFileSync(file, `{\n  "listeners": [\n    { "listen": ["127.0.0.1:0"], "routes": [{ "upstreams": ["127.0.0.1:1"], "weight": 2 }] }\n  ]\n}`);
    const res = await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST" });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { ok: boolean; errors: string[] };
    expect(body.ok).toBe(false);
    expect(body.errors[0]).toBe(`${file}:3:77: unknown key "weight" in listeners[0].routes[0] (known: name, match, upstreams, balance, respond, ipAffinity, terminateTls, cert, upstreamTls, proxyProtocol, maxConnectionsPerSecond, burst, suspended, suspendTimeoutMs, mtls, xclient, pool, timeoutMs, redirect, drop, headers, serve, plugins)`);
    expect(p.stderr()).toContain("POST /reload: reload refused, the running configuration stays");
    expect(await ask(port)).toBe("green");

    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    // At least: the file watcher may have reloaded too, after each edit.
    expect(Number(/switchyard_reloads_total\{result="ok"\} (\d+)/.exec(metrics)![1])).toBeGreaterThanOrEqual(1);
    expect(Number(/switchyard_reloads_total\{result="failed"\} (\d+)/.exec(metrics)![1])).toBeGreaterThanOrEqual(1);
    established.socket.end();
    await established.closed;
  } finally {
    await p?.stop();
    blue.stop();
    green.stop();
  }
});

test("reload: an address added is bound, an address removed stops accepting", async () => {
  const blue = namedBackend("blue");
  const dir = tempDir();
  const free = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const second = free.port;
  free.stop(true);
  const file = writeConfig(config(["127.0.0.1:0"], blue.port), dir);
  let p: RunningProxy | null = null;
  try {
    p = await startProxy(["serve", "-c", file]);
    const first = p.port;
    writeFileSync(file, JSON.stringify(config([`127.0.0.1:${second}`], blue.port)));
    process.kill(p.pid, "SIGHUP");
    await p.waitForLog("SIGHUP: configuration reloaded");
    expect(await ask(second)).toBe("blue");
    const refused = await connect(first).then((c) => c.closed, (e) => ({ error: String(e.code ?? e) }));
    expect(refused.error).toBe("ECONNREFUSED");
  } finally {
    await p?.stop();
    blue.stop();
  }
});

test("a long transfer keeps going across 20 reloads", async () => {
  const TOTAL = 1024 * 1024 * 1024;
  const { server: backend, writers } = streamingBackend(TOTAL, (h) => serve(h as any));
  const file = writeConfig(config(["127.0.0.1:0"], backend.port), tempDir());
  const p = await startProxy(["serve", "--relay", "userspace", "-c", file]);
  try {
    const side = newSide();
    const client = await Bun.connect({
      hostname: "127.0.0.1", port: p.port, allowHalfOpen: true,
      socket: {
        data(_s, d) { side.received += d.length; side.hash.update(d); },
        end(s) { side.done = true; s.end(); },
        close() { side.done = true; },
      },
    });
    // The reader pauses around each reload so the transfer is still running at the last one.
    for (let i = 0; i < 20; i++) {
      client.pause();
      process.kill(p.pid, "SIGHUP");
      await Bun.sleep(30);
      client.resume();
      await Bun.sleep(5);
    }
    expect(side.received).toBeLessThan(TOTAL);
    await eventually(() => side.done, 60_000, "the transfer to finish");
    expect(side.received).toBe(TOTAL);
    expect(side.hash.digest("hex")).toBe(writers[0]!.hash.digest("hex"));
    await eventually(() => (p.stderr().match(/SIGHUP: configuration reloaded/g) ?? []).length === 20, 10_000, "20 reloads");
  } finally {
    await p.stop();
    backend.stop();
  }
}, 90_000);

test("editing the config file reloads it; new connections see no refusal across reloads", async () => {
  const blue = namedBackend("blue");
  const green = namedBackend("green");
  const file = writeConfig(config(["127.0.0.1:0"], blue.port), tempDir());
  const p = await startProxy(["serve", "--relay", "userspace", "-c", file]);
  try {
    // A steady stream of new connections while the file flips between two backends five times.
    let stop = false;
    const answers: string[] = [];
    const failures: string[] = [];
    const load = (async () => {
      while (!stop) {
        try { answers.push(await ask(p.port)); } catch (e) { failures.push(String(e)); }
      }
    })();
    for (let i = 1; i <= 5; i++) {
      writeFileSync(file, JSON.stringify(config(["127.0.0.1:0"], i % 2 ? green.port : blue.port)));
      await eventually(() => (p.stderr().match(/config file changed: configuration reloaded/g) ?? []).length === i, 10_000, `reload ${i}`);
      await Bun.sleep(100);
    }
    stop = true;
    await load;
    expect(failures).toEqual([]);
    expect(answers.length).toBeGreaterThan(10);
    expect(answers.at(-1)).toBe("green"); // the fifth (odd) edit pointed at green
    expect(new Set(answers)).toEqual(new Set(["blue", "green"]));
  } finally {
    await p.stop();
    blue.stop();
    green.stop();
  }
}, 60_000);

test.each([["one process", []], ["2 workers", ["--workers", "2"]]])("%s: a reload refused at bind time keeps the old listeners and shows none of the new in /metrics", async (_shape, flags) => {
  const blue = namedBackend("blue");
  // Another process's socket on the port the new listener wants (no SO_REUSEPORT: bind fails).
  const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const file = writeConfig(config(["127.0.0.1:0"], blue.port), tempDir());
  let p: RunningProxy | null = null;
  try {
    p = await startProxy(["serve", ...flags, "-c", file]);
    const admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);
    const running = config(["127.0.0.1:0"], blue.port);
    const taken = { name: "taken", listen: [`127.0.0.1:${holder.port}`], routes: [{ name: "taken-route", upstreams: [`127.0.0.1:${blue.port}`] }] };
    writeFileSync(file, JSON.stringify({ ...running, listeners: [...running.listeners, taken] }));
    const res = await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST" });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { errors: string[] }).errors.join("\n")).toContain(`127.0.0.1:${holder.port}`);
    const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    expect(text).toContain('listener="edge"');
    expect(text.split("\n").filter((l) => l.includes("taken"))).toEqual([]);
    expect(Object.keys(((await (await fetch(`http://127.0.0.1:${admin}/metrics.json`)).json()) as { listeners: object }).listeners)).not.toContain("taken");
    expect(await ask(p.port)).toBe("blue");
  } finally {
    await p?.stop();
    holder.stop(true);
    blue.stop();
  }
}, 60_000);

/** Reloads the supervisor or the single process did (workers log their own lines, "worker N: …"). */
const reloadLines = (p: RunningProxy) => p.stderr().match(/(SIGHUP|config file changed|POST \/reload): configuration reloaded/g) ?? [];

async function reloadsOk(admin: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  return Number(/switchyard_reloads_total\{result="ok"\} (\d+)/.exec(text)![1]);
}

describe.each([["one process", []], ["2 workers", ["--workers", "2"]]])("%s: an edit of the config file followed by SIGHUP reloads once", (_shape, flags) => {
  test("SIGHUP right after the save: the watcher finds the content already loaded", async () => {
    const blue = namedBackend("blue");
    const green = namedBackend("green");
    const file = writeConfig(config(["127.0.0.1:0"], blue.port), tempDir());
    let p: RunningProxy | null = null;
    try {
      p = await startProxy(["serve", ...flags, "-c", file]);
      const admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);
      writeFileSync(file, JSON.stringify(config(["127.0.0.1:0"], green.port)));
      process.kill(p.pid, "SIGHUP");
      await p.waitForLog("SIGHUP: configuration reloaded");
      await Bun.sleep(1000); // the watcher's event (gathered for 200 ms) comes within this
      expect(reloadLines(p)).toEqual(["SIGHUP: configuration reloaded"]);
      expect(p.stderr()).toContain("config file changed: same content as loaded last; not reloading again");
      expect(await reloadsOk(admin)).toBe(1);
      expect(await ask(p.port)).toBe("green");
    } finally {
      await p?.stop();
      blue.stop();
      green.stop();
    }
  }, 30_000);

  test("SIGHUP just after the watcher reloaded: skipped, but the access log is still reopened (logrotate)", async () => {
    const blue = namedBackend("blue");
    const green = namedBackend("green");
    const dir = tempDir();
    const accessFile = join(dir, "access.log");
    const withLog = (port: number) => ({ ...config(["127.0.0.1:0"], port), log: { access: accessFile } });
    const file = writeConfig(withLog(blue.port), dir);
    let p: RunningProxy | null = null;
    try {
      p = await startProxy(["serve", ...flags, "-c", file]);
      const admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);
      writeFileSync(file, JSON.stringify(withLog(green.port)));
      await p.waitForLog("config file changed: configuration reloaded");
      renameSync(accessFile, `${accessFile}.1`); // logrotate moves the file, then sends SIGHUP
      process.kill(p.pid, "SIGHUP");
      await p.waitForLog(/SIGHUP: configuration unchanged since the file watcher reloaded it \d+ ms ago; not reloading again/);
      await Bun.sleep(1000);
      expect(reloadLines(p)).toEqual(["config file changed: configuration reloaded"]);
      expect(await reloadsOk(admin)).toBe(1);
      expect(await ask(p.port)).toBe("green");
      await eventually(() => existsSync(accessFile) && readFileSync(accessFile, "utf8").includes('"route":"r"'), 10_000, "an access log line in the reopened file");
    } finally {
      await p?.stop();
      blue.stop();
      green.stop();
    }
  }, 30_000);
});
