/**
 * Differential fuzzer of the route table's host and path patterns (src/route/host-pattern.ts):
 * generated patterns and hosts/paths, each answer compared with a reference built independently as
 * an anchored regular expression from SPEC.md's wording (`*` any run within one label, `**` one or
 * more labels, `/x/*` that prefix and below). Invariants: no throw; same answer as the reference for
 * well-formed hosts (no empty label; a host with one matches no wildcard label, which the reference's
 * `[^.]*` would not say, so those are only checked not to throw); a list matches exactly when one of its patterns does; case,
 * a port and a trailing dot never change the answer. Prints `N inputs, F failures, T s`.
 *
 *   node_modules/.bin/bun bench/fuzz/host-pattern.ts [inputs=1000000] [seed=1]
 * @module
 */
import { fuzzMain } from "./byte-mutations.ts";
import { compileHostPatterns, compilePathPatterns, normaliseHost, pathOnly } from "../../src/route/host-pattern.ts";

class Random {
  constructor(private s: number) { if (this.s === 0) this.s = 1; }
  next(): number {
    let x = this.s;
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  below(n: number): number { return this.next() % n; }
  pick<T>(a: readonly T[]): T { return a[this.below(a.length)]!; }
}

const LABEL_CHARS = ["a", "b", "c", "-", "1"];

function label(rng: Random, wild: boolean): string {
  if (wild && rng.below(6) === 0) return "**";
  let out = "";
  const n = 1 + rng.below(4);
  for (let i = 0; i < n; i++) out += wild && rng.below(4) === 0 ? "*" : rng.pick(LABEL_CHARS);
  return out.replace(/\*\*+/g, "*"); // "**" inside a label is refused by the schema: not generated
}

function hostPattern(rng: Random): string {
  const n = 1 + rng.below(4);
  return Array.from({ length: n }, () => label(rng, true)).join(".");
}

function host(rng: Random): string {
  const n = 1 + rng.below(5);
  return Array.from({ length: n }, () => label(rng, false)).join(".");
}

/** The reference: SPEC.md's rules as a regular expression over the normalised host. */
function referenceHost(pattern: string): RegExp {
  const parts = pattern.split(".").map((l) => (l === "**" ? "[^.]+(?:\\.[^.]+)*" : l.split("*").map(escape).join("[^.]*")));
  return new RegExp(`^${parts.join("\\.")}$`);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
}

function dress(rng: Random, h: string): string {
  let out = rng.below(2) === 0 ? h.toUpperCase() : h;
  if (rng.below(3) === 0 && !out.endsWith(".")) out += "."; // one trailing dot is ignored, as in DNS
  if (rng.below(3) === 0) out += `:${rng.below(65536)}`;
  return out;
}

const SEGMENTS = ["a", "b", "ab", "v1", "v10", ""];

function path(rng: Random): string {
  const n = rng.below(4);
  let p = "";
  for (let i = 0; i < n; i++) p += "/" + rng.pick(SEGMENTS);
  if (p === "" || rng.below(5) === 0) p += "/";
  if (rng.below(4) === 0) p += "?q=/" + rng.pick(SEGMENTS);
  return p;
}

function pathPattern(rng: Random): string {
  const base = path(rng).replace(/\?.*$/, "");
  return rng.below(2) === 0 ? (base.endsWith("/") ? base + "*" : base + "/*") : base;
}

function referencePath(pattern: string, p: string): boolean {
  const bare = pathOnly(p);
  if (!pattern.endsWith("/*")) return bare === pattern;
  const prefix = pattern.slice(0, -2);
  return bare === prefix || bare.startsWith(prefix + "/");
}

export interface HostFuzzReport { inputs: number; failures: number; seconds: number; examples: string[] }

export function runHostPatternFuzz(inputs: number, seed = 1): HostFuzzReport {
  const rng = new Random(seed);
  const report: HostFuzzReport = { inputs: 0, failures: 0, seconds: 0, examples: [] };
  const fail = (what: string) => {
    report.failures++;
    if (report.examples.length < 5) report.examples.push(what);
  };
  const started = performance.now();
  for (let i = 0; i < inputs; i++) {
    report.inputs++;
    try {
      if (i % 4 === 3) {
        const patterns = [pathPattern(rng), pathPattern(rng)];
        const p = path(rng);
        const want = patterns.some((x) => referencePath(x, p));
        const got = compilePathPatterns(patterns);
        if (got(pathOnly(p)) !== want) fail(`path ${JSON.stringify(patterns)} ${p}: got ${!want}`);
        continue;
      }
      const patterns = [hostPattern(rng), ...(rng.below(3) === 0 ? [hostPattern(rng)] : [])];
      // Half the hosts are made to match a pattern (its `*` filled in), or matching would be rare.
      const h = rng.below(2) === 0 ? host(rng) : patterns[0]!.replace(/\*\*/g, () => host(rng)).replace(/\*/g, () => rng.below(3) === 0 ? "" : label(rng, false));
      const test = compileHostPatterns(patterns);
      const n = normaliseHost(h);
      if (n === "" || n.split(".").includes("")) {
        // Not a host name (an empty label): no label for a pattern to stand for; only "no throw" holds.
        if (typeof test(n) !== "boolean") fail(`host ${JSON.stringify(h)}`);
        continue;
      }
      const want = patterns.some((p) => referenceHost(p).test(n));
      if (test(n) !== want) fail(`host ${JSON.stringify(patterns)} ${h}: got ${!want}`);
      const dressed = dress(rng, h);
      if (test(normaliseHost(dressed)) !== want) fail(`host ${JSON.stringify(patterns)} dressed ${dressed}: got ${!want}`);
      // Arbitrary bytes as a host: no throw, and a bounded answer (a boolean).
      const junk = String.fromCharCode(...Array.from({ length: rng.below(20) }, () => rng.below(128)));
      if (typeof test(normaliseHost(junk)) !== "boolean") fail(`junk ${JSON.stringify(junk)}`);
    } catch (e) {
      fail(`threw: ${String(e)}`);
    }
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

if (import.meta.main) fuzzMain(runHostPatternFuzz);
