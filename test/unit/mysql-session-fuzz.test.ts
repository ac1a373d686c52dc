import { expect, test } from "bun:test";
import { fuzzMysqlSession } from "../../bench/fuzz/mysql-session.ts";

// The CI-sized run of bench/fuzz/mysql-session.ts (which runs 10^6 inputs by hand), with a fixed seed
// so a failure is reproducible.
test("20 000 fuzzed mysql sessions (some on an upstreamTls route): no throw, the same steps and bytes on each side however the streams are split", () => {
  const r = fuzzMysqlSession(20_000, 20260101);
  expect(r.examples).toEqual([]);
  expect(r.failures).toBe(0);
  // The inputs reach every outcome (a run that only met refusals would pass vacuously).
  for (const key of ['{"kind":"route"}', '{"kind":"terminate-tls"}', '{"kind":"refuse","reason":"malformed_han', 'end {"kind":"relay"}', 'end {"kind":"fail","reason":"upstr', 'end {"kind":"fail","reason":"malfo', "start-tls", "start-tls then relay"]) {
    expect(r.seen[key] ?? 0).toBeGreaterThan(50);
  }
}, 120_000);
