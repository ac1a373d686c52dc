/**
 * Startup time with hyperfine (--export-json): `switchyard version` and `switchyard validate -c FILE`
 * against `haproxy -v`, `haproxy -c -f cfg` and `nginx -t`.
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "./procs.ts";
import type { StartupRow } from "./stats.ts";
import { startupConfigs, type Ctx } from "./systems.ts";

interface HyperfineJson { results: { command: string; mean: number; stddev: number | null; median: number; min: number; max: number; times: number[] }[] }

export async function startup(ctx: Ctx, quick: boolean): Promise<{ rows: StartupRow[]; raw: unknown }> {
  const cfg = startupConfigs(ctx);
  const commands: [string, string][] = [
    ["switchyard version", `${ctx.switchyard} version`],
    ["switchyard validate", `${ctx.switchyard} validate -c ${cfg.switchyard}`],
    ["haproxy -v", "haproxy -v"],
    ["haproxy -c", `haproxy -c -q -f ${cfg.haproxy}`],
  ];
  if (cfg.nginxDir) commands.push(["nginx -t", `nginx -t -q -p ${cfg.nginxDir} -c ${cfg.nginxDir}/nginx.conf -e ${cfg.nginxDir}/error.log`]);
  const json = join(ctx.work, "hyperfine.json");
  const args = ["hyperfine", "-N", "--style", "basic", "--warmup", quick ? "1" : "5", "--runs", quick ? "3" : "30", "--export-json", json];
  for (const [name, cmd] of commands) args.push("-n", name, cmd);
  const r = await run("hyperfine", args, 300_000);
  if (r.code !== 0) throw new Error(`hyperfine exited ${r.code}: ${r.stderr.trim()}`);
  const raw = JSON.parse(readFileSync(json, "utf8")) as HyperfineJson;
  const rows = raw.results.map((x, i) => ({
    name: commands[i]![0],
    command: commands[i]![1].replaceAll(ctx.switchyard, "dist/switchyard").replaceAll(ctx.work, "$WORK"),
    meanMs: x.mean * 1000, stddevMs: (x.stddev ?? 0) * 1000, medianMs: x.median * 1000,
    minMs: x.min * 1000, maxMs: x.max * 1000, runs: x.times.length,
  }));
  return { rows, raw };
}
