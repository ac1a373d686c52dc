/**
 * bench/results/README.md from one results file: command, machine, summary table, goals, startup,
 * every run. Also usable alone: `bun bench/runner/report.ts FILE.json [OUT_DIR]` regenerates the
 * README and chart.svg from a results file.
 * @module
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { chartSvg } from "./chart.ts";
import { REF_HAPROXY, type Results } from "./stats.ts";

export function fmtValue(v: number | null, unit: string): string {
  if (v === null) return "–";
  switch (unit) {
    case "req/s":
    case "conn/s":
      return v >= 1000 ? `${(v / 1000).toFixed(1)}k ${unit}` : `${v.toFixed(0)} ${unit}`;
    case "B/s":
      return v >= 1e9 ? `${(v / 1e9).toFixed(2)} GB/s` : `${(v / 1e6).toFixed(0)} MB/s`;
    case "B/conn":
      return `${Math.round(v)} B/conn`;
    default:
      return `${v} ${unit}`;
  }
}

export function fmtUs(us: number | null): string {
  if (us === null) return "–";
  return us < 1000 ? `${us.toFixed(0)} µs` : `${(us / 1000).toFixed(2)} ms`;
}

export const fmtRatio = (r: number | null) => (r === null ? "–" : `${r.toFixed(2)}×`);

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

export function readme(r: Results, jsonName: string, others: string[]): string {
  const unit = (sc: string) => r.scenarios.find((s) => s.id === sc)?.unit ?? "";
  const s = r.settings;
  const out: string[] = [];
  out.push("# Benchmark results", "");
  out.push(`Generated from [\`${jsonName}\`](${jsonName}) by \`bench/runner/report.ts\`; do not edit by hand, re-run the bench`);
  out.push("(see [../README.md](../README.md) for what each scenario measures and how to read the figures).", "");
  out.push(`- command: \`${r.command}\``);
  out.push(`- date: ${r.createdAt}, switchyard at ${r.git}${r.quick ? " (**quick mode**: smoke test only, not figures)" : ""}`);
  out.push(`- ${s.rounds} round(s), interleaved (every system once per round, per scenario); ${s.duration} s measured after ${s.warmup} s warmup per run; hold: ${s.hold} connections`);
  out.push(`- ratios: median of the system ÷ median of \`${REF_HAPROXY}\` (\`× haproxy\`) or of \`direct\` (no proxy, \`× direct\`); all figures from this one run on one machine`, "");
  out.push("![chart](chart.svg)", "");

  out.push("## Summary", "");
  out.push("Median over rounds. `hold` is bytes of proxy RSS per idle connection (lower is better; its p99 is connect → echo verified); every other figure is throughput (higher is better). `errors` is the sum over all rounds of the load generator's error count.", "");
  const rows = r.medians.map((m) => [
    m.scenario, `\`${m.system}\``, fmtValue(m.value, unit(m.scenario)), fmtUs(m.p99Us),
    fmtRatio(m.vsHaproxy), fmtRatio(m.vsDirect), m.errors ? `**${m.errors}**` : "0",
  ]);
  out.push(table(["scenario", "system", "median", "p99", "× haproxy", "× direct", "errors"], rows), "");

  out.push("## Goals of issue 3", "");
  out.push("Each switchyard variant against the **best** HAProxy variant of that scenario (so a loss to `haproxy/t2` is not hidden), and, for reference, against `haproxy/t1` (one thread, the CPU budget of one switchyard worker).", "");
  out.push(table(["goal", "switchyard", "ratio", "against", `vs ${REF_HAPROXY}`, "needed", "verdict"], r.goals.map((g) => [
    g.text, `\`${g.system}\``, fmtRatio(g.ratio), `\`${g.against}\``, fmtRatio(g.ratioT1), g.threshold, `**${g.verdict}**${g.errors ? ` (with ${g.errors} load errors: see Summary)` : ""}`,
  ])), "");
  if (r.goals.length === 0) out.push("No switchyard variant was measured, so no goal can be judged.", "");

  if (r.startup.length) {
    out.push("## Startup time (hyperfine)", "");
    const ref = r.startup.find((x) => x.name === "haproxy -c")?.meanMs ?? null;
    out.push(table(["command", "mean", "± σ", "min", "max", "runs", "× `haproxy -c`"], r.startup.map((x) => [
      `\`${x.command}\``, `${x.meanMs.toFixed(1)} ms`, `${x.stddevMs.toFixed(1)} ms`, `${x.minMs.toFixed(1)} ms`, `${x.maxMs.toFixed(1)} ms`, String(x.runs),
      ref ? fmtRatio(x.meanMs / ref) : "–",
    ])), "");
  }

  out.push("## Machine", "");
  out.push(table(["fact", "value"], Object.entries(r.machine).map(([k, v]) => [k, `\`${v.replace(/\|/g, "\\|")}\``])), "");

  out.push("## Systems", "");
  for (const sy of r.systems) out.push(`- \`${sy.id}\`: ${sy.describe}`);
  for (const n of r.notes) out.push(`- note: ${n}`);
  for (const p of r.problems) out.push(`- **problem**: ${p}`);
  out.push("");

  out.push("## Every run", "");
  out.push("Figures of each round in run order, to see the spread behind each median. Before each run the runner waits (up to 30 s) for the host to be ≥ 90 % idle; a run that started on a busier host says so.", "");
  const byKey = new Map<string, string[]>();
  for (const run of r.runs) {
    const k = `${run.scenario}\u0000${run.system}`;
    const idle = run.detail.host_idle_before_pct;
    const busy = typeof idle === "number" && idle < 90 ? ` (host ${idle}% idle before)` : "";
    const cell = run.ok
      ? fmtValue(run.value, unit(run.scenario)) + (run.errors ? ` (${run.errors} err)` : "") + busy
      : `failed: ${(run.error ?? "?").replace(/[|\n]/g, " ")}`;
    byKey.set(k, [...(byKey.get(k) ?? []), cell]);
  }
  out.push(table(["scenario", "system", "rounds"], [...byKey].map(([k, v]) => {
    const [sc, sys] = k.split("\u0000");
    return [sc!, `\`${sys}\``, v.join(" · ")];
  })), "");

  const cpuRuns = r.runs.filter((x) => x.scenario === "bulk" && x.ok && typeof x.detail.cpu_s_per_gb === "number");
  if (cpuRuns.length) {
    out.push("## CPU per GB moved (bulk)", "");
    out.push("Busy CPU seconds of the whole host (/proc/stat: user, nice, system, irq, softirq, steal) per GB moved, load generator and sink included, over each bulk run (warmup included; bytes = measured rate × run time). System-wide because the kernel engines work in softirq and kworkers. Median of the rounds.", "");
    const bySystem = new Map<string, number[]>();
    for (const x of cpuRuns) bySystem.set(x.system, [...(bySystem.get(x.system) ?? []), x.detail.cpu_s_per_gb as number]);
    out.push(table(["system", "CPU s / GB", "rounds"], [...bySystem].map(([sys, v]) => {
      const sorted = [...v].sort((a, b) => a - b);
      return [`\`${sys}\``, sorted[Math.floor(sorted.length / 2)]!.toFixed(3), v.map((n) => n.toFixed(3)).join(" · ")];
    })), "");
  }

  for (const sc of ["rr-1k", "redis-get", "rate"]) {
    const unit = sc === "rate" ? "conn" : "req";
    const rrRuns = r.runs.filter((x) => x.scenario === sc && x.ok && typeof x.detail.host_ticks_per_100k === "number");
    if (!rrRuns.length) continue;
    out.push(`## CPU per ${sc === "rate" ? "connection" : "request"} (${sc})`, "");
    out.push(`Clock ticks (1/100 s) per 100k ${sc === "rate" ? "connections (each: connect, 1 KB echoed, close)" : "requests"}: the proxy's process tree (utime + stime of every process and thread under it) and the whole host (/proc/stat busy time, load generator and backend included). ` +
      (sc === "redis-get" ? "Over the measured redis-benchmark run only (a fixed request count)." : "Warmup included in both (units = measured rate × run time).") + " Median of the rounds.", "");
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    const bySystem = new Map<string, { proxy: number[]; host: number[]; syscalls: number[] }>();
    for (const x of rrRuns) {
      const e = bySystem.get(x.system) ?? { proxy: [], host: [], syscalls: [] };
      if (typeof x.detail.proxy_ticks_per_100k === "number") e.proxy.push(x.detail.proxy_ticks_per_100k);
      if (typeof x.detail.syscalls_per_req === "number") e.syscalls.push(x.detail.syscalls_per_req);
      e.host.push(x.detail.host_ticks_per_100k as number);
      bySystem.set(x.system, e);
    }
    out.push(table(["system", `proxy ticks / 100k ${unit}`, `host ticks / 100k ${unit}`, `proxy syscalls / ${unit} (--syscalls)`, "rounds (proxy)"], [...bySystem].map(([sys, e]) => [
      `\`${sys}\``, e.proxy.length ? median(e.proxy).toFixed(1) : "-", median(e.host).toFixed(1), e.syscalls.length ? median(e.syscalls).toFixed(2) : "-",
      e.proxy.map((n) => n.toFixed(1)).join(" · ") || "-",
    ])), "");
  }

  if (others.length) {
    out.push("## All results files", "");
    for (const o of others) out.push(`- [\`${o}\`](${o})`);
    out.push("");
  }
  return out.join("\n");
}

/** Writes README.md and chart.svg next to the results file. */
export function writeReport(r: Results, jsonPath: string): void {
  const dir = dirname(jsonPath);
  const others = readdirSync(dir).filter((f) => f.endsWith(".json")).sort().reverse();
  writeFileSync(join(dir, "README.md"), readme(r, basename(jsonPath), others));
  writeFileSync(join(dir, "chart.svg"), chartSvg(r));
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) { console.error("usage: bun bench/runner/report.ts RESULTS.json"); process.exit(2); }
  writeReport(JSON.parse(readFileSync(file, "utf8")) as Results, file);
  console.log(`wrote ${join(dirname(file), "README.md")} and chart.svg`);
}
