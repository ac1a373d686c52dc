/**
 * A short run of bench/fuzz/host-pattern.ts (the 10^6-input run is a benchmark-style script, outside
 * the CI time budget): 20 000 generated host and path patterns against their regular-expression
 * reference. A fixed seed: a failure reproduces with `node_modules/.bin/bun bench/fuzz/host-pattern.ts 20000 14`.
 */
import { expect, test } from "bun:test";
import { runHostPatternFuzz } from "../../bench/fuzz/host-pattern.ts";

test("20 000 fuzzed patterns: no throw, same answers as the reference, case/port/trailing dot ignored", () => {
  const r = runHostPatternFuzz(20_000, 14);
  expect(r.examples).toEqual([]);
  expect(r.failures).toBe(0);
  expect(r.inputs).toBe(20_000);
});
