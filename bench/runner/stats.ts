/**
 * The results file's shape, medians over rounds, ratios, and the goals of issue 3.
 * @module
 */

export interface RunRecord {
  scenario: string;
  round: number;
  system: string;
  ok: boolean;
  error?: string;
  value: number | null;
  p99Us: number | null;
  errors: number;
  detail: Record<string, number | string | null>;
  raw: unknown;
}

export interface Median {
  scenario: string;
  system: string;
  runs: number;
  values: number[];
  value: number | null;
  p99Us: number | null;
  errors: number;
  /** value / the reference HAProxy's value (haproxy/t1) */
  vsHaproxy: number | null;
  /** value / direct's value */
  vsDirect: number | null;
}

export interface StartupRow { name: string; command: string; meanMs: number; stddevMs: number; medianMs: number; minMs: number; maxMs: number; runs: number }

export interface Goal {
  text: string;
  system: string;
  against: string;
  ratio: number | null;
  /** The same ratio against haproxy/t1 (one thread, like one switchyard worker). */
  ratioT1: number | null;
  threshold: string;
  verdict: "PASS" | "MISS" | "no data";
  /** Errors the load generator counted for this switchyard variant in this scenario (all rounds). */
  errors: number;
}

export interface ScenarioMeta { id: string; title: string; unit: string; higherIsBetter: boolean }

export interface Results {
  label: string;
  createdAt: string;
  command: string;
  git: string;
  quick: boolean;
  settings: Record<string, number | boolean>;
  machine: Record<string, string>;
  scenarios: ScenarioMeta[];
  systems: { id: string; describe: string }[];
  notes: string[];
  problems: string[];
  runs: RunRecord[];
  medians: Median[];
  startup: StartupRow[];
  goals: Goal[];
}

/** The HAProxy that ratios are taken against: one thread, the same CPU budget as one switchyard worker. */
export const REF_HAPROXY = "haproxy/t1";

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function medians(runs: RunRecord[], scenarios: ScenarioMeta[], systems: string[]): Median[] {
  const out: Median[] = [];
  for (const sc of scenarios) {
    const rows: Median[] = [];
    for (const sys of systems) {
      const mine = runs.filter((r) => r.scenario === sc.id && r.system === sys);
      if (mine.length === 0) continue;
      const ok = mine.filter((r) => r.ok && r.value !== null);
      const values = ok.map((r) => r.value!);
      rows.push({
        scenario: sc.id, system: sys, runs: mine.length, values,
        value: median(values),
        p99Us: median(ok.flatMap((r) => (r.p99Us === null ? [] : [r.p99Us]))),
        errors: mine.reduce((a, r) => a + r.errors, 0),
        vsHaproxy: null, vsDirect: null,
      });
    }
    const ref = (id: string) => rows.find((r) => r.system === id)?.value ?? null;
    for (const r of rows) {
      r.vsHaproxy = ratio(r.value, ref(REF_HAPROXY));
      r.vsDirect = ratio(r.value, ref("direct"));
    }
    out.push(...rows);
  }
  return out;
}

export function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

/** The goals of issue 3, for each switchyard variant, against the BEST HAProxy variant (so no loss hides). */
export function goals(meds: Median[]): Goal[] {
  const get = (sc: string, sys: string) => meds.find((m) => m.scenario === sc && m.system === sys)?.value ?? null;
  const best = (sc: string, higher: boolean) => {
    const hs = meds.filter((m) => m.scenario === sc && m.system.startsWith("haproxy/") && m.value !== null);
    hs.sort((a, b) => (higher ? b.value! - a.value! : a.value! - b.value!));
    return hs[0] ?? null;
  };
  const switchyards = [...new Set(meds.filter((m) => m.system.startsWith("switchyard/")).map((m) => m.system))];
  const out: Goal[] = [];
  const add = (text: string, sc: string, sys: string, vsDirect: boolean, higher: boolean, limit: number) => {
    const b = vsDirect ? null : best(sc, higher);
    const against = vsDirect ? "direct" : b?.system ?? "haproxy";
    const r = ratio(get(sc, sys), vsDirect ? get(sc, "direct") : b?.value ?? null);
    const pass = r === null ? null : higher ? r >= limit : r <= limit;
    out.push({
      text, system: sys, against, ratio: r,
      ratioT1: vsDirect ? null : ratio(get(sc, sys), get(sc, REF_HAPROXY)),
      threshold: `${higher ? "≥" : "≤"} ${limit}×`,
      verdict: pass === null ? "no data" : pass ? "PASS" : "MISS",
      errors: meds.find((m) => m.scenario === sc && m.system === sys)?.errors ?? 0,
    });
  };
  for (const sys of switchyards) {
    add("1 KB request/response ≥ 1.25× HAProxy", "rr-1k", sys, false, true, 1.25);
    add("bulk ≥ 0.9× direct", "bulk", sys, true, true, 0.9);
    add("idle memory per connection ≤ 0.6× HAProxy's", "hold", sys, false, false, 0.6);
    add("connection rate ≥ HAProxy's", "rate", sys, false, true, 1.0);
  }
  return out;
}
