/**
 * The benchmark runner (started by bench/run.sh): backends, systems under test, interleaved rounds
 * of every scenario, startup times, then the results file, README.md and chart.svg.
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { machineFacts } from "./machine.ts";
import { killAllSync, setPidFile, waitQuiet, type Child } from "./procs.ts";
import { fmtRatio, fmtUs, fmtValue, writeReport } from "./report.ts";
import { SCENARIOS, type Settings } from "./scenarios.ts";
import { startup } from "./startup.ts";
import { goals, medians, type Results, type RunRecord, type StartupRow } from "./stats.ts";
import { discoverSystems, startBackends, type Ctx } from "./systems.ts";

const { values: opt } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    hold: { type: "string" },
    scenarios: { type: "string" },
    systems: { type: "string" },
    label: { type: "string" },
    out: { type: "string" },
    workdir: { type: "string" },
    command: { type: "string" },
    syscalls: { type: "boolean", default: false },
  },
});

const root = resolve(import.meta.dir, "../..");
const work = opt.workdir ?? join("/tmp", `switchyard-bench-${process.pid}`);
mkdirSync(work, { recursive: true });
const ctx: Ctx = {
  root, work,
  switchyard: join(root, "dist/switchyard"),
  loadgen: join(root, "bench/loadgen/zig-out/bin/loadgen"),
  nproc: availableParallelism(),
};
const quick = opt.quick ?? false;
const settings: Settings = {
  quick,
  rounds: Number(opt.rounds ?? (quick ? 1 : 3)),
  duration: Number(opt.duration ?? (quick ? 1 : 5)),
  warmup: Number(opt.warmup ?? (quick ? 0.2 : 1)),
  hold: Number(opt.hold ?? (quick ? 300 : 5000)),
  holdSettle: quick ? 0.3 : 1,
  syscalls: opt.syscalls ?? false,
};
const wanted = opt.scenarios ? opt.scenarios.split(",") : null;
const scenarios = SCENARIOS.filter((s) => !wanted || wanted.includes(s.id));
if (wanted && scenarios.length !== wanted.length) {
  console.error(`bench: unknown scenario in --scenarios ${opt.scenarios} (known: ${SCENARIOS.map((s) => s.id).join(",")})`);
  process.exit(2);
}

/** `--systems a,b`: a system runs if its id is an entry or starts with an entry and "/" (`haproxy` = every HAProxy variant). */
const systemFilter = opt.systems ? opt.systems.split(",") : null;
const wantedSystem = (id: string) => !systemFilter || systemFilter.some((f) => id === f || id.startsWith(`${f}/`));

setPidFile(join(work, "pids"));
// The sockmap engine is off unless asked for (src/native/sockmap.ts says why); the bench measures
// it, so every switchyard it starts (and `switchyard version`, which lists the engines) is asked.
process.env.SWITCHYARD_NATIVE_SOCKMAP ??= "experimental";
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    console.error(`\nbench: ${sig}: stopping every process started`);
    killAllSync();
    process.exit(130);
  });
}

/** Before each run, wait (at most QUIET_WAIT_MS) for the CPUs to be this idle: other work skews a 2-core host. */
const QUIET_IDLE = 90;
const QUIET_WAIT_MS = 30_000;
/** ...and never more than this in total over the whole bench. */
let quietBudget = 180_000;

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}`;
}

async function main(): Promise<number> {
  const started = new Date();
  const backendsStarted: Child[] = [];
  const problems: string[] = [];
  const runs: RunRecord[] = [];
  let startupRows: StartupRow[] = [];
  let startupRaw: unknown = null;
  const machine = machineFacts(ctx);
  const git = Bun.spawnSync(["git", "-C", root, "describe", "--always", "--dirty"]).stdout.toString().trim() || "unknown";
  try {
    const backends = await startBackends(ctx, backendsStarted, new Set(scenarios.map((s) => s.backend)));
    console.log(`backends: echo ${backends.echo}, sink ${backends.sink}, http (nginx) ${backends.http}`);
    const found = await discoverSystems(ctx, backends, wantedSystem);
    problems.push(...found.problems);
    const systems = found.systems;
    console.log(`systems: ${systems.map((s) => s.id).join(", ")}`);
    for (const n of found.notes) console.log(`  note: ${n}`);
    for (const p of found.problems) console.log(`  PROBLEM: ${p}`);
    const perRun = settings.duration + settings.warmup + 1;
    if (systems.length === 0) throw new Error(`no system matches --systems ${opt.systems}`);
    const runsOn = (sc: (typeof scenarios)[number], s: (typeof systems)[number]) =>
      (sc.direct || s.kind !== "direct") && (!sc.tls || s.startTls !== undefined) && (!s.scenarios || s.scenarios.includes(sc.id));
    const total = scenarios.reduce((a, sc) => a + systems.filter((s) => runsOn(sc, s)).length, 0) * settings.rounds * perRun;
    console.log(`plan: ${scenarios.map((s) => s.id).join(", ")} × ${settings.rounds} round(s), ~${Math.ceil(total / 60)} min; work dir ${work}`);

    for (const sc of scenarios) {
      for (let round = 1; round <= settings.rounds; round++) {
        for (const sys of systems) {
          if (!runsOn(sc, sys)) continue;
          const rec: RunRecord = { scenario: sc.id, round, system: sys.id, ok: false, value: null, p99Us: null, errors: 0, detail: {}, raw: null };
          const t0 = Date.now();
          const idle = await waitQuiet(QUIET_IDLE, quick ? 0 : Math.min(QUIET_WAIT_MS, quietBudget));
          quietBudget = Math.max(0, quietBudget - (Date.now() - t0));
          try {
            const inst = await (sc.tls ? sys.startTls!(backends[sc.backend]) : sys.start(backends[sc.backend]));
            try {
              const m = await sc.run(ctx, settings, inst);
              Object.assign(rec, { ok: true, value: m.value, p99Us: m.p99Us, errors: m.errors, detail: { ...m.detail, host_idle_before_pct: Math.round(idle) }, raw: m.raw });
            } finally {
              await inst.stop();
            }
          } catch (e) {
            rec.error = String((e as Error).message ?? e).slice(0, 500);
          }
          runs.push(rec);
          const line = rec.ok
            ? `${fmtValue(rec.value, sc.unit).padEnd(16)} p99 ${fmtUs(rec.p99Us).padEnd(10)} errors ${rec.errors}${rec.detail.error_other_last ? ` (last other: ${rec.detail.error_other_last})` : ""}`
            : `FAILED: ${rec.error}`;
          const busy = idle < QUIET_IDLE ? `  [host only ${Math.round(idle)}% idle before the run]` : "";
          console.log(`${sc.id.padEnd(6)} round ${round}/${settings.rounds}  ${sys.id.padEnd(24)} ${line}${busy}`);
        }
      }
    }

    try {
      const st = await startup(ctx, quick);
      startupRows = st.rows;
      startupRaw = st.raw;
      for (const r of startupRows) console.log(`startup ${r.name.padEnd(20)} ${r.meanMs.toFixed(1)} ms ± ${r.stddevMs.toFixed(1)}`);
    } catch (e) {
      problems.push(`startup (hyperfine): ${(e as Error).message}`);
    }

    const meds = medians(runs, scenarios, systems.map((s) => s.id));
    const results: Results = {
      label: opt.label ?? (quick ? "quick" : "full"),
      createdAt: started.toISOString(),
      command: opt.command ?? `bash bench/run.sh ${process.argv.slice(2).join(" ")}`.trim(),
      git,
      quick,
      settings: { ...settings },
      machine,
      scenarios: scenarios.map(({ id, title, unit, higherIsBetter }) => ({ id, title, unit, higherIsBetter })),
      systems: systems.map((s) => ({ id: s.id, describe: s.describe })),
      notes: found.notes,
      problems,
      runs,
      medians: meds,
      startup: startupRows,
      goals: goals(meds),
    };
    const outDir = resolve(opt.out ?? join(root, "bench/results"));
    mkdirSync(outDir, { recursive: true });
    const jsonPath = join(outDir, `${stamp(started)}-${results.label}.json`);
    writeFileSync(jsonPath, JSON.stringify({ ...results, startupRaw }, null, 1) + "\n");
    writeReport(results, jsonPath);

    console.log("\nsummary (medians):");
    for (const m of meds) {
      const unit = scenarios.find((s) => s.id === m.scenario)!.unit;
      console.log(`  ${m.scenario.padEnd(6)} ${m.system.padEnd(24)} ${fmtValue(m.value, unit).padEnd(16)} p99 ${fmtUs(m.p99Us).padEnd(10)} ×haproxy ${fmtRatio(m.vsHaproxy).padEnd(6)} ×direct ${fmtRatio(m.vsDirect)}`);
    }
    console.log("goals:");
    for (const g of results.goals) console.log(`  ${g.verdict.padEnd(7)} ${g.text} (${g.system}: ${fmtRatio(g.ratio)} of ${g.against})`);
    console.log(`\nwrote ${jsonPath}\n      ${join(outDir, "README.md")}\n      ${join(outDir, "chart.svg")}`);

    // What counts as broken: a run that produced no figure, a setup problem; in quick mode also any
    // zero figure or any error counted by the load generators.
    for (const r of runs) {
      if (!r.ok) problems.push(`${r.scenario} ${r.system} round ${r.round}: ${r.error}`);
      else if (quick && !(r.value !== null && (r.value > 0 || r.scenario === "hold"))) problems.push(`${r.scenario} ${r.system}: figure is ${r.value}`);
      else if (quick && r.errors > 0) problems.push(`${r.scenario} ${r.system}: ${r.errors} errors`);
    }
    if (quick && startupRows.length === 0) problems.push("no startup figures");
  } finally {
    for (const c of backendsStarted.reverse()) await c.stop();
    killAllSync();
  }
  if (problems.length) {
    console.error(`\nbench: ${problems.length} problem(s):`);
    for (const p of [...new Set(problems)]) console.error(`  - ${p}`);
    return 1;
  }
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  console.error(`bench: ${(e as Error).stack ?? e}`);
  killAllSync();
  process.exit(1);
});
