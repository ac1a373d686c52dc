/**
 * The per-request HTTP metrics (src/control/http-metrics.ts): status classes, the latency histogram's
 * buckets, pool gauges read from live pools, a worker's snapshot summed into the supervisor's, and the
 * Prometheus lines (the integration test http-metrics.test.ts parses them with prometheus_client).
 */
import { describe, expect, test } from "bun:test";
import { HttpMetrics, LATENCY_BUCKETS, RequestCounters, STATUS_CLASSES } from "../../src/control/http-metrics.ts";
import { Metrics } from "../../src/control/metrics.ts";

describe("http metrics", () => {
  test("status classes: 1xx-5xx by the hundreds, none for 0 and anything outside 100-599", () => {
    const c = new RequestCounters();
    for (const s of [101, 200, 204, 302, 404, 431, 502, 0, 99, 600]) c.count(s);
    expect(Object.fromEntries(STATUS_CLASSES.map((k, i) => [k, c.classes[i]]))).toEqual({ none: 3, "1xx": 1, "2xx": 2, "3xx": 1, "4xx": 2, "5xx": 1 });
  });

  test("latency: each observation in the first bucket whose bound (seconds) it does not pass, +Inf past the last", () => {
    const c = new RequestCounters();
    c.observeLatency(1); // 0.001 s: the first bucket (le 0.001)
    c.observeLatency(1.5); // 0.0015 s: le 0.0025
    c.observeLatency(60_000); // 60 s: +Inf
    expect(c.latencyBuckets[0]).toBe(1);
    expect(c.latencyBuckets[1]).toBe(1);
    expect(c.latencyBuckets[LATENCY_BUCKETS.length]).toBe(1);
    expect(c.latencySum).toBeCloseTo(60.0025, 6);
  });

  test("pool gauges are read from the live pools at scrape time, counters kept", () => {
    const m = new HttpMetrics();
    const p = m.pool("web", "api", "10.0.0.1:80");
    const a = { idle: [1, 2], active: 1 }, b = { idle: [3], active: 4 };
    p.pools.add(a);
    p.pools.add(b);
    p.dialledTotal = 5;
    p.reusedTotal = 7;
    expect(m.snapshot().pools).toEqual([["web\0api\x0010.0.0.1:80", { idle: 3, active: 5, reusedTotal: 7, dialledTotal: 5 }]]);
    a.idle.pop();
    expect(m.snapshot().pools[0]![1].idle).toBe(2);
  });

  test("a worker's snapshot is added to the supervisor's sum, gauges included", () => {
    const worker = new Metrics();
    worker.http.route("web", "api").count(200);
    worker.http.route("web", "api").observeLatency(3);
    const stats = worker.http.pool("web", "api", "u:1");
    stats.pools.add({ idle: [1], active: 2 });
    stats.dialledTotal = 1;
    const sum = new Metrics();
    sum.add(worker.snapshot());
    sum.add(worker.snapshot());
    const text = sum.toPrometheus();
    expect(text).toContain('switchyard_http_requests_total{listener="web",route="api",class="2xx"} 2\n');
    expect(text).toContain('switchyard_http_upstream_latency_seconds_count{listener="web",route="api"} 2\n');
    expect(text).toContain('switchyard_http_upstream_latency_seconds_bucket{listener="web",route="api",le="0.005"} 2\n');
    expect(text).toContain('switchyard_http_pool_idle{listener="web",route="api",upstream="u:1"} 2\n');
    expect(text).toContain('switchyard_http_pool_active{listener="web",route="api",upstream="u:1"} 4\n');
    expect(text).toContain('switchyard_http_pool_dialled_total{listener="web",route="api",upstream="u:1"} 2\n');
  });

  test("no http series without http traffic (the exposition of other protocols is unchanged)", () => {
    expect(new Metrics().toPrometheus()).not.toContain("switchyard_http_");
  });
});
