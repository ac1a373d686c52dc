/**
 * The gate across 2 workers: limits are global (one shared table), blocked connections are counted by
 * reason in /metrics and GET /blocked. Connections spread over both workers (SO_REUSEPORT hashes the
 * client port), so a per-worker limit would admit up to twice as many as the tests allow. A worker
 * killed with kill -9 gives its places back.
 */
import { expect, test } from "bun:test";
import { eventually, metricsJson, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { childrenOf } from "../helpers/load.ts";
import { connect, echoServer, type Client } from "../helpers/peers.ts";

const adminPort = (p: RunningProxy) => Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);

/** Connect and say "ping": "admitted" once echoed, "refused" when closed without an answer. */
async function attempt(port: number): Promise<{ verdict: "admitted" | "refused"; client: Client }> {
  const c = await connect(port);
  c.socket.write("ping");
  let closed = false;
  void c.closed.then(() => (closed = true));
  await eventually(() => c.receivedText() === "ping" || closed, 10_000, "an echo or a close");
  return { verdict: c.receivedText() === "ping" ? "admitted" : "refused", client: c };
}

/** Pids of the processes holding established connections accepted on `port`. */
async function holders(port: number): Promise<number[]> {
  const out = await new Response(Bun.spawn(["ss", "-tnpH", "state", "established", `( sport = :${port} )`]).stdout).text();
  return [...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}

async function withProxy(listeners: object[], run: (p: RunningProxy, admin: number, ports: number[]) => Promise<void>) {
  const echo = echoServer();
  let p: RunningProxy | null = null;
  try {
    const withBackend = listeners.map((l) => ({ listen: ["127.0.0.1:0"], routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }], ...l }));
    p = await startProxy(["serve", "-c", writeConfig({ workers: 2, admin: { listen: "127.0.0.1:0" }, log: { access: "off" }, listeners: withBackend }, tempDir())]);
    const ports = p.addresses.map((a) => Number(a.slice(a.lastIndexOf(":") + 1)));
    await run(p, adminPort(p), ports);
  } finally {
    await p?.stop();
    echo.stop();
  }
}

test("gate: maxConcurrentPerIp and maxConnections hold across workers; a closed connection frees its place", async () => {
  await withProxy([
    { name: "perip", protection: { maxConcurrentPerIp: 10 } },
    { name: "max", maxConnections: 2 },
  ], async (_p, admin, [perIp, max]) => {
    const held: Client[] = [];
    const verdicts: string[] = [];
    for (let i = 0; i < 14; i++) {
      const r = await attempt(perIp!);
      verdicts.push(r.verdict);
      if (r.verdict === "admitted") held.push(r.client);
    }
    expect(verdicts).toEqual([...new Array(10).fill("admitted"), ...new Array(4).fill("refused")]);
    // Both workers hold some of the 10 (else this would not show the limit is global): 2/1024 chance.
    expect(new Set(await holders(perIp!)).size).toBe(2);
    const maxVerdicts: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await attempt(max!);
      maxVerdicts.push(r.verdict);
      if (r.verdict === "admitted") held.push(r.client);
    }
    expect(maxVerdicts).toEqual(["admitted", "admitted", "refused", "refused"]);

    // One ends: its place is free again (released in whichever worker held it).
    held[0]!.socket.end();
    await held[0]!.closed;
    let again: "admitted" | "refused" = "refused";
    const deadline = Date.now() + 10_000;
    while (again === "refused" && Date.now() < deadline) {
      const r = await attempt(perIp!);
      again = r.verdict;
      if (again === "admitted") held.push(r.client);
      else await Bun.sleep(50);
    }
    expect(again).toBe("admitted");

    const blocked = await (await fetch(`http://127.0.0.1:${admin}/blocked`)).json() as { total: Record<string, number>; listeners: Record<string, Record<string, number>> };
    expect(blocked.listeners.perip!.concurrencyLimited).toBeGreaterThanOrEqual(4);
    expect(blocked.listeners.max).toEqual({ maxConnections: 2 });
    const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    expect(text).toContain('switchyard_connections_blocked_total{listener="max",reason="maxConnections"} 2');
    for (const c of held) c.socket.end();
  });
}, 60_000);

test("gate: a per-IP rate holds across workers; CIDR lists refuse by reason", async () => {
  await withProxy([
    // 1 per second: at most one token comes back per second the test runs.
    { name: "rate", protection: { rateLimit: { connectionsPerSecond: 1, burst: 4 } } },
    { name: "deny", protection: { blocklist: ["127.0.0.0/8"] } },
    { name: "allow", protection: { allowlist: ["10.0.0.0/8", "::1/128"] } },
  ], async (_p, admin, ports) => {
    const started = performance.now();
    const rate: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await attempt(ports[0]!);
      rate.push(r.verdict);
      r.client.socket.end();
    }
    const refills = Math.ceil((performance.now() - started) / 1000);
    const admitted = rate.filter((v) => v === "admitted").length;
    expect(rate.slice(0, 4)).toEqual(["admitted", "admitted", "admitted", "admitted"]);
    expect(admitted).toBeLessThanOrEqual(4 + refills);
    expect(rate.filter((v) => v === "refused").length).toBeGreaterThan(0);

    expect((await attempt(ports[1]!)).verdict).toBe("refused");
    expect((await attempt(ports[2]!)).verdict).toBe("refused");
    const blocked = await (await fetch(`http://127.0.0.1:${admin}/blocked`)).json() as { total: Record<string, number>; listeners: Record<string, Record<string, number>> };
    expect(blocked.listeners.rate!.rateLimited).toBe(10 - admitted);
    expect(blocked.listeners.deny).toEqual({ cidrBlocklist: 1 });
    expect(blocked.listeners.allow).toEqual({ cidrAllowlist: 1 });
    expect(blocked.total.cidrBlocklist).toBe(1);
  });
}, 60_000);

test("gate: a route's maxConnectionsPerSecond holds across workers", async () => {
  const echo = echoServer();
  let p: RunningProxy | null = null;
  try {
    p = await startProxy(["serve", "-c", writeConfig({
      workers: 2, admin: { listen: "127.0.0.1:0" }, log: { access: "off" },
      listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ name: "slow", maxConnectionsPerSecond: 1, burst: 3, upstreams: [`127.0.0.1:${echo.port}`] }] }],
    }, tempDir())]);
    const started = performance.now();
    const verdicts: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await attempt(p.port);
      verdicts.push(r.verdict);
      r.client.socket.end();
    }
    const refills = Math.ceil((performance.now() - started) / 1000);
    expect(verdicts.slice(0, 3)).toEqual(["admitted", "admitted", "admitted"]);
    expect(verdicts.filter((v) => v === "admitted").length).toBeLessThanOrEqual(3 + refills);
    const blocked = await (await fetch(`http://127.0.0.1:${adminPort(p)}/blocked`)).json() as { listeners: Record<string, Record<string, number>> };
    expect(blocked.listeners.edge!.routeRateLimited).toBe(verdicts.filter((v) => v === "refused").length);
  } finally {
    await p?.stop();
    echo.stop();
  }
}, 60_000);

test("gate: a worker killed with kill -9 gives back its places: maxConnections and maxConcurrentPerIp admit their full limit again", async () => {
  await withProxy([
    { name: "max", maxConnections: 40 },
    { name: "perip", protection: { maxConcurrentPerIp: 40 } },
  ], async (p, admin, [max, perIp]) => {
    const ports = [max!, perIp!];
    const held: Client[] = [];
    for (const port of ports) {
      for (let i = 0; i < 30; i++) {
        const r = await attempt(port);
        expect(r.verdict).toBe("admitted");
        held.push(r.client);
      }
      // The victim must hold some of each listener's 30 (else it leaks nothing): 2 in 2^30 it does not.
      expect(new Set(await holders(port)).size).toBe(2);
    }
    const victim = (await holders(max!))[0]!;
    process.kill(victim, "SIGKILL");
    await p.waitForLog("worker died; replacing it", 10_000);
    await eventually(() => childrenOf(p.pid).length === 2 && !childrenOf(p.pid).includes(victim), 10_000, "a replacement worker");
    for (const c of held) c.socket.end();
    await Promise.all(held.map((c) => c.closed));
    // The survivor has seen every close (its places are back); the victim's are what this is about.
    const active = async () => { const m = await metricsJson(admin); return m.listeners.max.active + m.listeners.perip.active; };
    const deadline = Date.now() + 10_000;
    while ((await active()) !== 0 && Date.now() < deadline) await Bun.sleep(50);
    expect(await active()).toBe(0);

    for (const port of ports) {
      const verdicts: string[] = [];
      const again: Client[] = [];
      for (let i = 0; i < 50; i++) {
        const r = await attempt(port);
        verdicts.push(r.verdict);
        if (r.verdict === "admitted") again.push(r.client);
      }
      expect(verdicts).toEqual([...new Array(40).fill("admitted"), ...new Array(10).fill("refused")]);
      for (const c of again) c.socket.end();
    }
  });
}, 120_000);
