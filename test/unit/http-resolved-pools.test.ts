/**
 * Pools of endpoints chosen by the resolver module (src/http/resolve-request.ts): one per endpoint,
 * reused, and bounded: past 1024 endpoints, the pools that hold no connection are forgotten.
 */
import { expect, test } from "bun:test";
import { resolvedPool } from "../../src/http/resolve-request.ts";
import { ALL_POOLS } from "../../src/http/upstream-pool.ts";
import { Metrics } from "../../src/control/metrics.ts";
import type { ListenerRuntime } from "../../src/proxy/runtime.ts";

test("one pool per endpoint; empty ones forgotten past 1024 endpoints, busy ones kept", () => {
  const metrics = new Metrics();
  const listener = { config: { name: "web" }, state: { metrics } } as unknown as ListenerRuntime;
  const first = resolvedPool(listener, "10.0.0.1:80");
  expect(resolvedPool(listener, "10.0.0.1:80")).toBe(first);
  first.active = 1; // carrying a request
  const idleOne = resolvedPool(listener, "10.0.0.2:80");
  for (let i = 3; i <= 1024; i++) resolvedPool(listener, `10.0.${i >> 8}.${i & 255}:80`);
  const fresh = resolvedPool(listener, "10.9.9.9:80"); // the 1025th: the empty ones go first
  expect(resolvedPool(listener, "10.0.0.1:80")).toBe(first);
  expect(resolvedPool(listener, "10.0.0.2:80")).not.toBe(idleOne);
  expect(ALL_POOLS.has(idleOne)).toBe(false);
  expect(ALL_POOLS.has(first)).toBe(true);
  expect(ALL_POOLS.has(fresh)).toBe(true);
  expect(metrics.http.pool("web", "(resolver)", "10.0.0.2:80").pools.has(idleOne)).toBe(false);
  first.active = 0;
});
