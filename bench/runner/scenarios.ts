/**
 * The scenarios: what one run of one system does and which figure it yields. Load comes from
 * bench/loadgen (rr, rate, bulk, hold) and wrk (http); the target is the system's listen address.
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Child, countSyscalls, cpuTicksOf, memoryOf, run } from "./procs.ts";
import type { Backends, Ctx, Instance } from "./systems.ts";

export interface Settings {
  quick: boolean;
  rounds: number;
  /** Measured seconds of one rr/rate/bulk/http run. */
  duration: number;
  /** Seconds of load before measuring (loadgen --warmup; a separate wrk run). */
  warmup: number;
  /** Idle connections held through the proxy in `hold`. */
  hold: number;
  /** Seconds between HOLDING and the memory reading. */
  holdSettle: number;
  /** Count the proxy's system calls per request in rr-1k and redis-get with perf stat (--syscalls). */
  syscalls: boolean;
}

export interface Measure {
  /** The headline figure, in the scenario's unit. */
  value: number;
  p99Us: number | null;
  errors: number;
  detail: Record<string, number | string | null>;
  raw: unknown;
}

export interface Scenario {
  id: string;
  title: string;
  unit: string;
  higherIsBetter: boolean;
  backend: keyof Backends;
  /** false: the scenario measures a proxy only (memory), so `direct` sits it out. */
  direct: boolean;
  /** true: the target terminates TLS (System.startTls); systems that cannot sit it out. */
  tls?: boolean;
  run(ctx: Ctx, s: Settings, target: Instance): Promise<Measure>;
}

interface LoadgenReport {
  rps: number; connections_per_s: number; bytes_per_s: number; requests: number; duration_s: number;
  held: number; dropped: number; setup_s: number; errors_total: number; error_other_last: string | null;
  errors: Record<string, number>;
  latency_us: { p50: number; p90: number; p99: number; p999: number; max: number } | null;
}

function lastJson<T>(text: string): T | null {
  const line = text.trim().split("\n").reverse().find((l) => l.startsWith("{"));
  return line ? (JSON.parse(line) as T) : null;
}

async function loadgen(ctx: Ctx, s: Settings, args: string[]): Promise<LoadgenReport> {
  const cmd = [ctx.loadgen, ...args, "--duration", String(s.duration), "--warmup", String(s.warmup), "--json"];
  const r = await run(`loadgen ${args[0]}`, cmd, (s.duration + s.warmup + 60) * 1000);
  const report = lastJson<LoadgenReport>(r.stdout);
  if (r.code === 2 || !report) throw new Error(`${cmd.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return report;
}

function fromLoadgen(rep: LoadgenReport, value: number): Measure {
  return {
    value,
    p99Us: rep.latency_us?.p99 ?? null,
    errors: rep.errors_total,
    detail: {
      requests: rep.requests,
      p50_us: rep.latency_us?.p50 ?? null,
      p999_us: rep.latency_us?.p999 ?? null,
      error_other_last: rep.error_other_last,
    },
    raw: rep,
  };
}

const rr: Scenario = {
  id: "rr-1k", title: "1 KB request/response, 50 connections", unit: "req/s", higherIsBetter: true,
  backend: "echo", direct: true,
  async run(ctx, s, t) {
    return costed(ctx, s, t, ["rr", "--target", t.address, "--connections", "50", "--size", "1024"], (rep) => rep.rps);
  },
};

/**
 * One loadgen run with its cost per unit (a request, or a connection: `rateOf` picks loadgen's
 * figure): the proxy's CPU (its process tree's ticks) and the whole host's (/proc/stat, so work moved
 * into softirq or kworkers is not hidden), and with --syscalls its system calls. Both deltas cover
 * loadgen's warmup, so the units are the measured rate times warmup + duration, as in bulk.
 */
async function costed(ctx: Ctx, s: Settings, t: Instance, args: string[], rateOf: (rep: LoadgenReport) => number): Promise<Measure> {
  const proxyBefore = t.pid === null ? 0 : cpuTicksOf(t.pid);
  const hostBefore = hostCpuSeconds();
  const perf = syscallCounter(ctx, s, t);
  const rep = await loadgen(ctx, s, args);
  const counted = await perf?.stop();
  const host = hostCpuSeconds() - hostBefore;
  const proxy = t.pid === null ? null : cpuTicksOf(t.pid) - proxyBefore;
  const m = fromLoadgen(rep, rateOf(rep));
  const units = Math.max(1, rateOf(rep) * (s.duration + s.warmup));
  const per100k = 1e5 / units;
  m.detail.proxy_ticks_per_100k = proxy === null ? null : Math.round(proxy * per100k * 10) / 10;
  m.detail.host_ticks_per_100k = Math.round(host * 100 * per100k * 10) / 10;
  perRequest(m.detail, counted, units);
  return m;
}

/** perf stat on the proxy for this run when --syscalls asked for it (null otherwise, or for direct). */
function syscallCounter(ctx: Ctx, s: Settings, t: Instance) {
  return s.syscalls && t.pid !== null ? countSyscalls(t.pid, join(ctx.work, `perf-${Date.now()}.csv`)) : null;
}

function perRequest(detail: Measure["detail"], counted: { syscalls: number; contextSwitches: number } | null | undefined, requests: number): void {
  if (!counted) return;
  detail.syscalls_per_req = Math.round((counted.syscalls / requests) * 1000) / 1000;
  detail.context_switches_per_req = Math.round((counted.contextSwitches / requests) * 1000) / 1000;
}

/** One redis-benchmark run; its --csv line for the test (rps and latency percentiles in ms). */
async function redisBenchmark(address: string, args: string[]): Promise<{ rps: number; p50Ms: number; p99Ms: number }> {
  const i = address.lastIndexOf(":");
  const cmd = ["redis-benchmark", "-h", address.slice(0, i), "-p", address.slice(i + 1), "-d", "1024", "--csv", ...args];
  const r = await run("redis-benchmark", cmd, 300_000);
  const row = r.stdout.trim().split("\n").reverse().find((l) => /^"[A-Z]/.test(l));
  if (r.code !== 0 || !row) throw new Error(`${cmd.join(" ")} exited ${r.code}: ${(r.stderr + r.stdout).trim().slice(0, 300)}`);
  const f = row.split(",").map((c) => c.replace(/"/g, ""));
  return { rps: Number(f[1]), p50Ms: Number(f[4]), p99Ms: Number(f[6]) };
}

const redisGet: Scenario = {
  id: "redis-get", title: "redis-benchmark GET of a 1 KB value, 64 connections, to redis-server", unit: "req/s",
  higherIsBetter: true, backend: "redis", direct: true,
  async run(_ctx, s, t) {
    // A fixed request count (redis-benchmark has no duration): about `duration` seconds at 60k/s.
    const requests = Math.max(20_000, Math.round(60_000 * s.duration));
    await redisBenchmark(t.address, ["-t", "set", "-n", "2000", "-c", "8"]); // the key GET reads
    if (s.warmup > 0) await redisBenchmark(t.address, ["-t", "get", "-n", String(Math.round(20_000 * s.warmup)), "-c", "64"]);
    const proxyBefore = t.pid === null ? 0 : cpuTicksOf(t.pid);
    const hostBefore = hostCpuSeconds();
    const perf = syscallCounter(_ctx, s, t);
    const rep = await redisBenchmark(t.address, ["-t", "get", "-n", String(requests), "-c", "64"]);
    const counted = await perf?.stop();
    const host = hostCpuSeconds() - hostBefore;
    const proxy = t.pid === null ? null : cpuTicksOf(t.pid) - proxyBefore;
    const per100k = 1e5 / requests;
    const detail: Measure["detail"] = {};
    perRequest(detail, counted, requests);
    return {
      value: rep.rps,
      p99Us: rep.p99Ms * 1000,
      errors: 0,
      detail: {
        requests,
        p50_us: rep.p50Ms * 1000,
        proxy_ticks_per_100k: proxy === null ? null : Math.round(proxy * per100k * 10) / 10,
        host_ticks_per_100k: Math.round(host * 100 * per100k * 10) / 10,
        ...detail,
      },
      raw: rep,
    };
  },
};

const rate: Scenario = {
  id: "rate", title: "new connections per second (connect, 1 KB echo, close), 50 at a time", unit: "conn/s",
  higherIsBetter: true, backend: "echo", direct: true,
  async run(ctx, s, t) {
    return costed(ctx, s, t, ["rate", "--target", t.address, "--connections", "50", "--size", "1024"], (rep) => rep.connections_per_s);
  },
};

/** Busy CPU time of the whole host so far, in seconds (/proc/stat: every state but idle and iowait). */
function hostCpuSeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  // /proc/stat counts in USER_HZ, which the kernel fixes at 100 for userspace.
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / 100;
}

const bulk: Scenario = {
  id: "bulk", title: "bulk upload, 1 connection to a sink, 64 KiB writes", unit: "B/s", higherIsBetter: true,
  backend: "sink", direct: true,
  async run(ctx, s, t) {
    // CPU per GB moved, system-wide: the kernel engines do their work in softirq and kworkers,
    // which no per-process counter shows. The delta covers loadgen's warmup too, so the bytes are
    // the measured rate times warmup + duration (a steady stream; stated in the report).
    const cpuBefore = hostCpuSeconds();
    const rep = await loadgen(ctx, s, ["bulk", "--target", t.address, "--connections", "1", "--size", "65536"]);
    const cpu = hostCpuSeconds() - cpuBefore;
    const m = fromLoadgen(rep, rep.bytes_per_s);
    const gb = (rep.bytes_per_s * (s.duration + s.warmup)) / 1e9;
    m.detail.host_cpu_s = Math.round(cpu * 100) / 100;
    m.detail.cpu_s_per_gb = gb > 0 ? Math.round((cpu / gb) * 1000) / 1000 : null;
    return m;
  },
};

const WRK_SCRIPT = join(import.meta.dir, "wrk-report.lua");

interface WrkReport {
  duration_us: number; requests: number; bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: { mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
}

async function wrk(seconds: number, url: string): Promise<WrkReport> {
  const cmd = ["wrk", "-t2", "-c50", `-d${seconds}s`, "--timeout", "5s", "-s", WRK_SCRIPT, url];
  const r = await run("wrk", cmd, (seconds + 60) * 1000);
  const line = r.stdout.split("\n").find((l) => l.startsWith("WRKJSON "));
  if (r.code !== 0 || !line) throw new Error(`${cmd.join(" ")} exited ${r.code}: ${(r.stderr + r.stdout).trim()}`);
  return JSON.parse(line.slice("WRKJSON ".length)) as WrkReport;
}

const http: Scenario = {
  id: "http", title: "HTTP/1.1 keep-alive GET of a small nginx response (wrk, 2 threads, 50 connections)",
  unit: "req/s", higherIsBetter: true, backend: "http", direct: true,
  async run(_ctx, s, t) {
    const url = `http://${t.address}/`;
    if (s.warmup > 0) await wrk(Math.max(1, Math.round(s.warmup)), url);
    const rep = await wrk(Math.max(1, Math.round(s.duration)), url);
    const errors = Object.values(rep.errors).reduce((a, b) => a + b, 0);
    return {
      value: rep.requests / (rep.duration_us / 1e6),
      p99Us: rep.latency_us.p99,
      errors,
      detail: { requests: rep.requests, p50_us: rep.latency_us.p50, p999_us: rep.latency_us.p999, non_2xx: rep.errors.status },
      raw: rep,
    };
  },
};

/** One loadgen process holds at most 19000 (open-file limit minus its reserve); stay well below. */
const HOLD_PER_PROCESS = 15000;

const hold: Scenario = {
  id: "hold", title: "idle memory per proxied connection (RSS after - before, over held connections)",
  unit: "B/conn", higherIsBetter: false, backend: "echo", direct: false,
  async run(ctx, s, t) {
    if (t.pid === null) throw new Error("hold needs a proxy process");
    await Bun.sleep(300);
    const before = memoryOf(t.pid);
    const shares: number[] = [];
    for (let left = s.hold; left > 0; left -= HOLD_PER_PROCESS) shares.push(Math.min(left, HOLD_PER_PROCESS));
    const seconds = s.holdSettle + 1.5;
    const clients = shares.map((n, i) => new Child(`loadgen hold ${i}`,
      [ctx.loadgen, "hold", "--target", t.address, "--connections", String(n), "--duration", String(seconds), "--json"],
      join(ctx.work, `hold-${Date.now()}-${i}`)));
    try {
      let held = 0;
      for (const c of clients) held += Number((await c.waitFor(/^HOLDING (\d+)$/m, 120_000))[1]);
      await Bun.sleep(s.holdSettle * 1000);
      const after = memoryOf(t.pid);
      const reports: LoadgenReport[] = [];
      for (const c of clients) {
        await Promise.race([c.proc.exited, Bun.sleep((seconds + 30) * 1000)]);
        const rep = lastJson<LoadgenReport>(c.out());
        if (!rep) throw new Error(`${c.name} printed no report: ${c.tail()}`);
        reports.push(rep);
      }
      if (held === 0) throw new Error("no connection was held");
      const setup = Math.max(...reports.map((r) => r.setup_s));
      const p99 = Math.max(...reports.map((r) => r.latency_us?.p99 ?? 0));
      // A connection that failed is already one of loadgen's errors; count a shortfall only if it is not.
      const errors = Math.max(reports.reduce((a, r) => a + r.errors_total, 0), s.hold - held);
      return {
        value: ((after.rssKiB - before.rssKiB) * 1024) / held,
        p99Us: p99 || null,
        errors,
        detail: {
          held,
          processes: before.pids.length === after.pids.length ? after.pids.length : `${before.pids.length}->${after.pids.length}`,
          rss_before_kib: before.rssKiB, rss_after_kib: after.rssKiB,
          pss_before_kib: before.pssKiB, pss_after_kib: after.pssKiB,
          pss_per_conn_b: Math.round(((after.pssKiB - before.pssKiB) * 1024) / held),
          // The two parts of the value: anonymous memory (per connection) and file pages (code run first now).
          anon_per_conn_b: Math.round(((after.anonKiB - before.anonKiB) * 1024) / held),
          file_per_conn_b: Math.round(((after.fileKiB - before.fileKiB) * 1024) / held),
          setup_s: setup,
        },
        raw: reports,
      };
    } finally {
      for (const c of clients) await c.stop();
    }
  },
};

// ---------------------------------------------------------------- TLS termination
// The same certificate (EC P-256) on every system; plaintext behind it. `openssl s_time` (one client
// process, sequential handshakes) counts handshakes; wrk over HTTPS measures keep-alive traffic.

async function sTime(s: Settings, t: Instance, extra: string[]): Promise<Measure> {
  const seconds = Math.max(1, Math.round(s.duration));
  const cmd = ["openssl", "s_time", "-connect", t.address, "-time", String(seconds), ...extra];
  const r = await run("openssl s_time", cmd, (seconds + 60) * 1000);
  // "1234 connections in 5 real seconds, 0 bytes read per connection"
  const m = /(\d+) connections in (\d+(?:\.\d+)?) real seconds/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`${cmd.join(" ")} exited ${r.code}: ${(r.stderr + r.stdout).trim().slice(-300)}`);
  const n = Number(m[1]);
  // s_time prints one character per connection: "r" for a resumed session, "*" for a full handshake.
  const progress = r.stdout.slice(r.stdout.lastIndexOf("starting") + "starting".length).split("\n").find((l) => /^[r*]+$/.test(l)) ?? "";
  const resumed = progress.replace(/\*/g, "").length;
  return {
    value: n / Math.max(Number(m[2]), 1e-3), p99Us: null, errors: 0,
    detail: { connections: n, resumed_pct: progress.length ? Math.round((100 * resumed) / progress.length) : null },
    raw: r.stdout.replace(/[r*]{80,}/g, (x) => `${x.length} progress marks`),
  };
}

const tlsNew: Scenario = {
  id: "tls-new", title: "TLS 1.3 full handshakes per second (openssl s_time -new, one client process)", unit: "conn/s",
  higherIsBetter: true, backend: "echo", direct: false, tls: true,
  run: (_ctx, s, t) => sTime(s, t, ["-new"]),
};

const tlsResumed: Scenario = {
  id: "tls-resume", title: "TLS 1.2 resumed handshakes per second (openssl s_time -reuse -tls1_2)", unit: "conn/s",
  higherIsBetter: true, backend: "echo", direct: false, tls: true,
  run: (_ctx, s, t) => sTime(s, t, ["-reuse", "-tls1_2"]),
};

const tlsRr: Scenario = {
  id: "tls-rr", title: "HTTPS keep-alive GET of a 1 KB response through TLS termination (wrk, 2 threads, 50 connections)",
  unit: "req/s", higherIsBetter: true, backend: "http", direct: false, tls: true,
  async run(_ctx, s, t) {
    const url = `https://${t.address}/1k`;
    if (s.warmup > 0) await wrk(Math.max(1, Math.round(s.warmup)), url);
    const rep = await wrk(Math.max(1, Math.round(s.duration)), url);
    const errors = Object.values(rep.errors).reduce((a, b) => a + b, 0);
    return {
      value: rep.requests / (rep.duration_us / 1e6), p99Us: rep.latency_us.p99, errors,
      detail: { requests: rep.requests, p50_us: rep.latency_us.p50, p999_us: rep.latency_us.p999, non_2xx: rep.errors.status },
      raw: rep,
    };
  },
};

/** In run order: `rate` last, since it leaves tens of thousands of TIME_WAIT sockets behind. */
export const SCENARIOS: Scenario[] = [rr, redisGet, bulk, http, hold, tlsRr, tlsNew, tlsResumed, rate];
