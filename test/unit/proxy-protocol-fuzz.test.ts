import { expect, test } from "bun:test";
import { fuzzProxyProtocol } from "../../bench/fuzz/proxy-protocol.ts";

// The CI-sized run of bench/fuzz/proxy-protocol.ts (10^6 inputs by hand), with a fixed seed so a
// failure reproduces.
test("20 000 fuzzed PROXY headers: no throw, prefix-consistent, bounded, re-encodable", () => {
  const r = fuzzProxyProtocol(20_000, 20261203);
  expect(r.examples).toEqual([]);
  expect(r.failures).toBe(0);
  // The inputs reach every outcome (a run that only produced not_proxy_header would pass vacuously).
  for (const k of ["header v1", "header v1 unknown", "header v2", "header v2 unknown", "need-more", "error not_proxy_header",
    "error v1_bad_address", "error v1_bad_port", "error v1_bad_fields", "error v1_bad_line_end", "error v1_too_long", "error v1_bad_protocol",
    "error v2_bad_version", "error v2_bad_family", "error v2_short_addresses", "error v2_too_long", "error v2_bad_tlv"]) {
    expect(r.seen[k] ?? 0).toBeGreaterThan(5);
  }
}, 120_000);
