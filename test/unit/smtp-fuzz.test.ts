import { expect, test } from "bun:test";
import { fuzzSmtp } from "../../bench/fuzz/smtp.ts";

// The CI-sized run of bench/fuzz/smtp.ts (which runs 10^6 inputs by hand): same invariants, a seed
// per run of the suite would make failures unreproducible, so the seed is fixed.
test("20 000 fuzzed SMTP inputs: no throw, same events however split, bounded", () => {
  const r = fuzzSmtp(20_000, 20260101);
  expect(r.examples).toEqual([]);
  expect(r.failures).toBe(0);
  // The inputs reach every layer (a fuzz run that only produced unknown_command would pass vacuously).
  for (const key of ["cmd ehlo", "cmd mail", "cmd rcpt", "cmd data", "msg", "msg too-large", "err line_too_long", "err bare_lf", "err bare_cr", "err bare_lf_in_data", "err bare_cr_in_data"]) {
    expect(r.seen[key] ?? 0).toBeGreaterThan(20);
  }
}, 120_000);
