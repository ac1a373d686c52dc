/**
 * A short run of bench/fuzz/http.ts (the 10^6-input run is a benchmark-style script, outside the CI
 * time budget): 20 000 generated inputs through the head parsers, the serializer and the chunked
 * framer, every invariant of that script checked. A fixed seed, so a failure here reproduces with
 * `node_modules/.bin/bun bench/fuzz/http.ts 20000 14`.
 */
import { expect, test } from "bun:test";
import { runFuzz } from "../../bench/fuzz/http.ts";

test("20 000 fuzzed inputs: no throw, same answer however cut, bounded, re-serialised heads parse clean", () => {
  const r = runFuzz(20_000, 14);
  expect(r.examples).toEqual([]);
  expect(r.failures).toBe(0);
  expect(r.inputs).toBe(20_000);
});
