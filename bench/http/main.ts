/**
 * HTTP/1.1 reverse-proxy benchmark (issue 14's "Measured"): switchyard's http listener against HAProxy
 * 2.6 in `mode http` and nginx `proxy_pass` with upstream keepalive, all in front of one nginx backend
 * serving small static bodies, with wrk keep-alive load. Run by bench/http.sh (see bench/README.md).
 *
 * Every system is started once and kept running; the runs are interleaved (round 1: every load on
 * every system, round 2: the same...), so a disturbance of the shared host hits all systems alike.
 * Per run: requests/s and latency from wrk, the CPU ticks of the proxy's process tree
 * (/proc/PID/stat utime+stime, descendants included) and the whole host's busy ticks (/proc/stat)
 * over the measured seconds. Afterwards, with fresh processes: memory per idle keep-alive client
 * connection (N connections that made one request each, held; VmRSS delta / N).
 * @module
 */
import { chmodSync, mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Child, cpuTicksOf, freePort, killAllSync, memoryOf, run, setPidFile, waitPort } from "../runner/procs.ts";

interface Options {
  rounds: number; duration: number; warmup: number; loads: Load[]; systems: string[] | null;
  switchyards: { label: string; path: string }[]; idle: number; memory: boolean;
  out: string | null; workdir: string; command: string; wrkThreads: number;
}
interface Load { conns: number; path: string; size: string }
interface Sys { id: string; kind: "direct" | "switchyard" | "haproxy" | "nginx"; threads: number; describe: string; start(): Promise<Running> }
interface Running { address: string; pid: number | null; stop(): Promise<void> }
interface RunRecord {
  round: number; system: string; load: string; rps: number; requests: number; errors: number; non2xx: number;
  p50Us: number; p99Us: number; proxyTicks: number | null; hostBusyTicks: number; hostTotalTicks: number; seconds: number;
}

const TICK_US = 10_000; // USER_HZ = 100

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 3, duration: 5, warmup: 1, loads: [], systems: null, switchyards: [], idle: 2000, memory: true,
    out: null, workdir: "", command: "", wrkThreads: 2,
  };
  let loads = "64x100,256x100,64x4k,256x4k";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!, v = () => argv[++i]!;
    if (a === "--rounds") o.rounds = Number(v());
    else if (a === "--duration") o.duration = Number(v());
    else if (a === "--warmup") o.warmup = Number(v());
    else if (a === "--loads") loads = v();
    else if (a === "--systems") o.systems = v().split(",");
    else if (a === "--switchyard") { const [label, path] = v().split("="); o.switchyards.push({ label: label!, path: path! }); }
    else if (a === "--idle") o.idle = Number(v());
    else if (a === "--no-memory") o.memory = false;
    else if (a === "--out") o.out = v();
    else if (a === "--workdir") o.workdir = v();
    else if (a === "--command") o.command = v();
    else if (a === "--wrk-threads") o.wrkThreads = Number(v());
    else throw new Error(`unknown option ${a}`);
  }
  if (o.switchyards.length === 0) o.switchyards.push({ label: "", path: "dist/switchyard" });
  o.loads = loads.split(",").map((l) => {
    const [c, size] = l.split("x");
    return { conns: Number(c), size: size!, path: `/${size}` };
  });
  return o;
}

// ───────────────────────────────────────────── configs

const BODY_100 = "x".repeat(99) + "\n";
const BODY_4K = "y".repeat(4095) + "\n";

function nginxMain(dir: string, workers: number): string {
  return `worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 19000;
events { worker_connections 16384; }
`;
}

function tempPaths(dir: string): string {
  return ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${dir}/${t};`).join("\n");
}

/** The backend: one worker, static files of 100 B and 4 KiB (descriptors cached: no open per request). */
function backendConfig(dir: string, listen: string): string {
  mkdirSync(join(dir, "www"), { recursive: true });
  writeFileSync(join(dir, "www", "100"), BODY_100);
  writeFileSync(join(dir, "www", "4k"), BODY_4K);
  return `${nginxMain(dir, 1)}
http {
  access_log off;
${tempPaths(dir)}
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  server {
    listen ${listen} backlog=4096;
    root ${dir}/www;
    default_type text/plain;
    sendfile on;
    open_file_cache max=16 inactive=3600s;
    open_file_cache_valid 3600s;
    etag off;
  }
}
`;
}

/** nginx as a reverse proxy: the same forwarding headers as the others, upstream keepalive. */
function nginxProxyConfig(dir: string, listen: string, backend: string): string {
  return `${nginxMain(dir, 1)}
http {
  access_log off;
${tempPaths(dir)}
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  upstream be { server ${backend}; keepalive 512; keepalive_requests 100000000; }
  server {
    listen ${listen} backlog=4096;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto http;
      proxy_set_header X-Forwarded-Host $host;
      proxy_buffering on;
    }
  }
}
`;
}

/** HAProxy mode http with idle server connections shared (http-reuse always), the same headers. */
function haproxyConfig(listen: string, backend: string, threads: number): string {
  return `global
  nbthread ${threads}
  maxconn 9000

defaults
  mode http
  option http-keep-alive
  http-reuse always
  option forwardfor
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 120s

frontend web
  bind ${listen}
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  default_backend be

backend be
  server s1 ${backend}
`;
}

/** switchyard's http listener: one route to the backend, a pool as deep as the connection count. */
function switchyardConfig(listen: string, backend: string): string {
  return JSON.stringify({
    log: { access: "off" },
    drainTimeoutMs: 1000,
    listeners: [{
      name: "web", listen: [listen], protocol: "http",
      routes: [{ upstreams: [backend], pool: { maxIdle: 512, idleTimeoutMs: 120000 } }],
    }],
  }, null, 2) + "\n";
}

// ───────────────────────────────────────────── systems

function dirFor(o: Options, name: string): string {
  const d = join(o.workdir, name.replace(/[^a-z0-9.-]+/gi, "-"));
  mkdirSync(d, { recursive: true });
  for (const t of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(d, t), { recursive: true });
  return d;
}

function nginxCommand(dir: string): string[] {
  return ["nginx", "-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log"), "-g", "daemon off;"];
}

async function startNginx(o: Options, name: string, conf: (dir: string, listen: string) => string): Promise<Running> {
  const dir = dirFor(o, name);
  const listen = `127.0.0.1:${freePort()}`;
  writeFileSync(join(dir, "nginx.conf"), conf(dir, listen));
  const c = new Child(name, nginxCommand(dir), join(dir, "nginx"));
  try { await waitPort(listen, 10_000, c); } catch (e) { await c.stop(); throw e; }
  c.adoptChildren();
  return { address: listen, pid: c.pid, stop: () => c.stop() };
}

function systemsFor(o: Options, backend: string): Sys[] {
  const sy = (label: string, path: string, workers: number): Sys => ({
    id: `switchyard${label ? `:${label}` : ""}/w${workers}`, kind: "switchyard", threads: workers,
    describe: `${path} serve -c FILE --workers ${workers} (protocol http, access log off, pool.maxIdle 512)`,
    start: async () => {
      const dir = dirFor(o, `switchyard-${label}-w${workers}`);
      const listen = `127.0.0.1:${freePort()}`;
      const cfg = join(dir, "switchyard.json");
      writeFileSync(cfg, switchyardConfig(listen, backend));
      const c = new Child(`switchyard ${label} w${workers}`, [path, "serve", "-c", cfg, "--workers", String(workers)], join(dir, "switchyard"));
      try {
        await c.waitFor(/switchyard ready/);
        await waitPort(listen, 10_000, c);
        if (workers > 1) c.adoptChildren();
      } catch (e) { await c.stop(); throw e; }
      return { address: listen, pid: c.pid, stop: () => c.stop() };
    },
  });
  const haproxy = (threads: number): Sys => ({
    id: `haproxy/t${threads}`, kind: "haproxy", threads,
    describe: `haproxy -f cfg -db: mode http, nbthread ${threads}, http-reuse always, option forwardfor`,
    start: async () => {
      const dir = dirFor(o, `haproxy-t${threads}`);
      const listen = `127.0.0.1:${freePort()}`;
      const cfg = join(dir, "haproxy.cfg");
      writeFileSync(cfg, haproxyConfig(listen, backend, threads));
      const c = new Child(`haproxy t${threads}`, ["haproxy", "-f", cfg, "-db"], join(dir, "haproxy"));
      try { await waitPort(listen, 10_000, c); } catch (e) { await c.stop(); throw e; }
      return { address: listen, pid: c.pid, stop: () => c.stop() };
    },
  });
  const list: Sys[] = [
    { id: "direct", kind: "direct", threads: 0, describe: "wrk straight to the nginx backend (the limit)", start: async () => ({ address: backend, pid: null, stop: async () => {} }) },
    ...o.switchyards.map((s) => sy(s.label, s.path, 1)),
    haproxy(1),
    {
      id: "nginx/w1", kind: "nginx", threads: 1,
      describe: "nginx proxy_pass, worker_processes 1, upstream keepalive 512, proxy_http_version 1.1",
      start: () => startNginx(o, "nginx-proxy", (dir, listen) => nginxProxyConfig(dir, listen, backend)),
    },
    ...o.switchyards.map((s) => sy(s.label, s.path, 2)),
    haproxy(2),
  ];
  const wanted = o.systems;
  if (!wanted) return list;
  // An entry names a system, or (without a label) every variant of it: "switchyard/w1".
  return list.filter((s) => wanted.some((w) => s.id === w || s.id.replace(/:[^/]+/, "") === w));
}

// ───────────────────────────────────────────── measuring

function hostTicks(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
}

const WRK_SCRIPT = join(import.meta.dir, "..", "runner", "wrk-report.lua");

interface WrkReport { duration_us: number; requests: number; errors: Record<string, number>; latency_us: { p50: number; p99: number } }

async function wrk(o: Options, seconds: number, load: Load, address: string): Promise<WrkReport> {
  const cmd = ["wrk", `-t${o.wrkThreads}`, `-c${load.conns}`, `-d${seconds}s`, "--timeout", "5s", "-s", WRK_SCRIPT, `http://${address}${load.path}`];
  const r = await run("wrk", cmd, (seconds + 60) * 1000);
  const m = /WRKJSON (\{.*\})/.exec(r.stdout);
  if (!m) throw new Error(`wrk printed no report (exit ${r.code}): ${r.stdout} ${r.stderr}`);
  return JSON.parse(m[1]!) as WrkReport;
}

async function measure(o: Options, round: number, sys: Sys, run: Running, load: Load): Promise<RunRecord> {
  if (o.warmup > 0) await wrk(o, Math.max(1, Math.round(o.warmup)), load, run.address);
  const cpu0 = run.pid ? cpuTicksOf(run.pid) : 0;
  const host0 = hostTicks();
  const rep = await wrk(o, o.duration, load, run.address);
  const host1 = hostTicks();
  const cpu1 = run.pid ? cpuTicksOf(run.pid) : 0;
  const seconds = rep.duration_us / 1e6;
  const errors = Object.entries(rep.errors).reduce((a, [k, n]) => a + (k === "status" ? 0 : n), 0);
  return {
    round, system: sys.id, load: `${load.conns}x${load.size}`, rps: rep.requests / seconds, requests: rep.requests,
    errors, non2xx: rep.errors.status ?? 0, p50Us: rep.latency_us.p50, p99Us: rep.latency_us.p99,
    proxyTicks: run.pid ? cpu1 - cpu0 : null, hostBusyTicks: host1.busy - host0.busy, hostTotalTicks: host1.total - host0.total, seconds,
  };
}

interface MemoryRecord { system: string; connections: number; failed: number; rssBeforeKiB: number; rssAfterKiB: number; bytesPerConnection: number }

/** A fresh proxy, warmed by a short wrk run, then N idle keep-alive clients: RSS delta / N. */
async function idleMemory(o: Options, sys: Sys, load: Load): Promise<MemoryRecord> {
  const r = await sys.start();
  try {
    await wrk(o, 1, { conns: 64, path: load.path, size: load.size }, r.address);
    await Bun.sleep(1000);
    const before = memoryOf(r.pid!).rssKiB;
    const dir = dirFor(o, `idle-${sys.id}`);
    const holder = new Child(`idle clients ${sys.id}`, [process.execPath, join(import.meta.dir, "idle-clients.ts"), r.address, String(o.idle), load.path], join(dir, "idle"));
    try {
      const m = await holder.waitFor(/HELD (\d+) FAILED (\d+)/, 60_000);
      await Bun.sleep(1000);
      const after = memoryOf(r.pid!).rssKiB;
      const held = Number(m[1]);
      return { system: sys.id, connections: held, failed: Number(m[2]), rssBeforeKiB: before, rssAfterKiB: after, bytesPerConnection: ((after - before) * 1024) / Math.max(1, held) };
    } finally { await holder.stop(); }
  } finally { await r.stop(); }
}

// ───────────────────────────────────────────── reporting

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Summary {
  system: string; load: string; rps: number; rpsRuns: number[]; p99Us: number; proxyUsPerReq: number | null;
  hostUsPerReq: number; hostBusyPct: number; errors: number; vsHaproxy: number | null; vsHaproxyRuns: number[]; p99VsHaproxy: number | null;
}

/** The HAProxy a system is judged against: as many threads as it has workers (t1 for nginx). */
function reference(sys: Sys): string | null {
  if (sys.kind === "haproxy" || sys.kind === "direct") return sys.kind === "direct" ? "haproxy/t1" : null;
  return `haproxy/t${Math.min(2, Math.max(1, sys.threads))}`;
}

function summarise(systems: Sys[], loads: Load[], runs: RunRecord[]): Summary[] {
  const out: Summary[] = [];
  for (const load of loads) {
    const l = `${load.conns}x${load.size}`;
    for (const sys of systems) {
      const rs = runs.filter((r) => r.system === sys.id && r.load === l);
      if (rs.length === 0) continue;
      const ref = reference(sys);
      const refRuns = ref ? runs.filter((r) => r.system === ref && r.load === l) : [];
      const perRound = rs.map((r) => {
        const h = refRuns.find((x) => x.round === r.round);
        return h ? r.rps / h.rps : NaN;
      }).filter((x) => !Number.isNaN(x));
      const rps = median(rs.map((r) => r.rps));
      const p99 = median(rs.map((r) => r.p99Us));
      const refRps = refRuns.length ? median(refRuns.map((r) => r.rps)) : null;
      const refP99 = refRuns.length ? median(refRuns.map((r) => r.p99Us)) : null;
      out.push({
        system: sys.id, load: l, rps, rpsRuns: rs.map((r) => Math.round(r.rps)), p99Us: p99,
        proxyUsPerReq: rs[0]!.proxyTicks === null ? null : median(rs.map((r) => (r.proxyTicks! * TICK_US) / r.requests)),
        hostUsPerReq: median(rs.map((r) => (r.hostBusyTicks * TICK_US) / r.requests)),
        hostBusyPct: median(rs.map((r) => (100 * r.hostBusyTicks) / Math.max(1, r.hostTotalTicks))),
        errors: rs.reduce((a, r) => a + r.errors + r.non2xx, 0),
        vsHaproxy: refRps ? rps / refRps : null, vsHaproxyRuns: perRound, p99VsHaproxy: refP99 ? p99 / refP99 : null,
      });
    }
  }
  return out;
}

const k = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));
const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`;
const x = (r: number | null) => (r === null ? "–" : `${r.toFixed(2)}×`);

function markdown(o: Options, systems: Sys[], sums: Summary[], mem: MemoryRecord[], machine: Record<string, string>): string {
  const lines: string[] = [];
  lines.push(`Command: \`${o.command}\``, "");
  lines.push(`Rounds ${o.rounds} × ${o.duration} s per run (after a ${o.warmup} s warm-up run), wrk -t${o.wrkThreads}, keep-alive; runs interleaved: every round runs every load on every system.`, "");
  lines.push("| machine | |", "|---|---|", ...Object.entries(machine).map(([a, b]) => `| ${a} | ${b} |`), "");
  lines.push("Systems:", "", ...systems.map((s) => `- \`${s.id}\`: ${s.describe}`), "");
  lines.push(
    "| load | system | req/s (median) | × HAProxy (per-round) | p99 | p99 × HAProxy | proxy CPU µs/req | host busy µs/req | host busy | errors |",
    "|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const s of sums) {
    lines.push(`| ${s.load} | ${s.system} | ${k(s.rps)} (${s.rpsRuns.map(k).join(" / ")}) | ${x(s.vsHaproxy)} (${s.vsHaproxyRuns.map((r) => r.toFixed(2)).join(" / ")}) | ${ms(s.p99Us)} | ${x(s.p99VsHaproxy)} | ${s.proxyUsPerReq === null ? "–" : s.proxyUsPerReq.toFixed(1)} | ${s.hostUsPerReq.toFixed(1)} | ${s.hostBusyPct.toFixed(0)} % | ${s.errors} |`);
  }
  lines.push("", "Ratios are to HAProxy with as many threads as the system has workers (nginx and direct: t1). Loads are `CONNECTIONSxBODY` (a GET of a 100 B or 4 KiB static body).", "");
  if (mem.length) {
    lines.push(`Memory per idle keep-alive client connection (fresh process, warmed by a 1 s wrk run, then ${o.idle} connections that made one request each, held; VmRSS of the process tree after minus before, over N):`, "");
    lines.push("| system | held | RSS before | RSS after | bytes per connection | × HAProxy t1 |", "|---|---|---|---|---|---|");
    const ref = mem.find((m) => m.system === "haproxy/t1");
    for (const m of mem) lines.push(`| ${m.system} | ${m.connections}${m.failed ? ` (${m.failed} failed)` : ""} | ${m.rssBeforeKiB} KiB | ${m.rssAfterKiB} KiB | ${m.bytesPerConnection.toFixed(0)} | ${x(ref ? m.bytesPerConnection / ref.bytesPerConnection : null)} |`);
    lines.push("");
  }
  return lines.join("\n");
}

function machineFacts(): Record<string, string> {
  const sh = (cmd: string[]) => { try { return Bun.spawnSync(cmd).stdout.toString().trim(); } catch { return "?"; } };
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  return {
    cpu: `${cpu} × ${sh(["nproc"])}`, kernel: sh(["uname", "-r"]), haproxy: sh(["haproxy", "-v"]).split("\n")[0]!,
    nginx: Bun.spawnSync(["nginx", "-v"]).stderr.toString().trim(), wrk: sh(["wrk", "--version"]).split("\n")[0] || "wrk",
    date: new Date().toISOString(),
  };
}

// ───────────────────────────────────────────── main

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (!o.workdir) o.workdir = `/tmp/switchyard-http-bench.${process.pid}`;
  mkdirSync(o.workdir, { recursive: true });
  chmodSync(o.workdir, 0o755); // nginx's workers (www-data) read the backend's files below it
  setPidFile(join(o.workdir, "pids"));
  const stopAll = () => { killAllSync(); process.exit(130); };
  process.on("SIGINT", stopAll);
  process.on("SIGTERM", stopAll);

  const backend = await startNginx(o, "backend", backendConfig);
  const systems = systemsFor(o, backend.address);
  const running = new Map<string, Running>();
  const runs: RunRecord[] = [];
  const mem: MemoryRecord[] = [];
  try {
    for (const s of systems) running.set(s.id, await s.start());
    for (let round = 1; round <= o.rounds; round++) {
      for (const load of o.loads) {
        for (const s of systems) {
          const rec = await measure(o, round, s, running.get(s.id)!, load);
          runs.push(rec);
          console.log(`round ${round} ${rec.load} ${s.id}: ${k(rec.rps)} req/s, p99 ${ms(rec.p99Us)}, proxy ${rec.proxyTicks === null ? "–" : ((rec.proxyTicks * TICK_US) / rec.requests).toFixed(1)} µs/req, host ${((rec.hostBusyTicks * TICK_US) / rec.requests).toFixed(1)} µs/req${rec.errors + rec.non2xx ? `, ${rec.errors} errors ${rec.non2xx} non-2xx` : ""}`);
        }
      }
    }
    for (const r of running.values()) await r.stop();
    running.clear();
    if (o.memory) {
      for (const s of systems) {
        if (s.kind === "direct") continue;
        const m = await idleMemory(o, s, o.loads[0]!);
        mem.push(m);
        console.log(`idle ${s.id}: ${m.connections} held, ${m.bytesPerConnection.toFixed(0)} B per connection (RSS ${m.rssBeforeKiB} → ${m.rssAfterKiB} KiB)`);
      }
    }
  } finally {
    for (const r of running.values()) await r.stop();
    await backend.stop();
  }
  const sums = summarise(systems, o.loads, runs);
  const machine = machineFacts();
  const md = markdown(o, systems, sums, mem, machine);
  console.log("\n" + md);
  if (o.out) {
    writeFileSync(`${o.out}.json`, JSON.stringify({ command: o.command, machine, options: { ...o, loads: o.loads }, systems: systems.map(({ id, describe }) => ({ id, describe })), runs, summary: sums, memory: mem }, null, 2) + "\n");
    writeFileSync(`${o.out}.table.md`, md + "\n");
    console.log(`written: ${o.out}.json, ${o.out}.table.md`);
  }
}

await main();
