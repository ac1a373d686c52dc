import { expect, test } from "bun:test";
import { fuzzMysql } from "../../bench/fuzz/mysql.ts";

// The CI-sized run of bench/fuzz/mysql.ts (which runs 10^6 inputs by hand), with a fixed seed so a
// failure is reproducible.
test("20 000 fuzzed MySQL inputs: no throw, same messages however split, codecs round-trip", () => {
  const r = fuzzMysql(20_000, 20260101);
  expect(r.examples).toEqual([]);
  expect(r.failures).toBe(0);
  // The inputs reach every codec and both framer errors (a run that only hit message_too_large would pass vacuously).
  for (const key of ["message", "response41", "handshake", "auth ok", "auth err", "auth auth-switch", "auth auth-more-data", "error message_too_large", "large message", "large bad_sequence"]) {
    expect(r.seen[key] ?? 0).toBeGreaterThan(20);
  }
}, 120_000);
