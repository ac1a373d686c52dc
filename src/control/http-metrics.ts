/**
 * Per-request metrics of listeners that route each request (HTTP, issue 14): requests by route and
 * status class, the upstream latency histogram per route (request sent to response head, as the
 * access log's upstreamMs), and per upstream of a route its pool's gauges and counters. Kept apart from
 * src/control/metrics.ts (per connection), which holds one of these and renders it with its own.
 *
 * Counting allocates nothing: callers keep the RequestCounters and PoolStats objects they were given
 * (one per route, one per pool) and bump number fields. Pool gauges (idle, active) are read from the
 * live pools at scrape time, so no path has to keep a second count in step.
 * @module
 */

/** Upper bounds (seconds) of the upstream latency histogram's buckets; +Inf follows. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/**
 * Status classes, by index: 0 "none" is a request that got no response from us or the upstream (the
 * route dropped it, the client left first, the upstream failed after part of a response).
 */
export const STATUS_CLASSES = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"] as const;

/** One route's requests (key `listener\0route`; route `-` for requests no route took). */
export class RequestCounters {
  /** Counts per STATUS_CLASSES index. */
  readonly classes: number[] = new Array(STATUS_CLASSES.length).fill(0);
  /** Counts per bucket of LATENCY_BUCKETS (not cumulative), the last one +Inf; sum in seconds. */
  readonly latencyBuckets: number[] = new Array(LATENCY_BUCKETS.length + 1).fill(0);
  latencySum = 0;

  /** One request answered with `status` (0: no response). */
  count(status: number): void {
    const c = status >= 100 && status < 600 ? Math.floor(status / 100) : 0;
    this.classes[c]!++;
  }

  /** One upstream response head that came `ms` after the request was sent. */
  observeLatency(ms: number): void {
    const s = ms / 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && s > LATENCY_BUCKETS[i]!) i++;
    this.latencyBuckets[i]!++;
    this.latencySum += s;
  }
}

/** What PoolStats reads from a live pool at scrape time (src/http/upstream-pool.ts UpstreamPool). */
export interface PoolGauges {
  readonly idle: { readonly length: number };
  readonly active: number;
}

/** One upstream of one route (key `listener\0route\0upstream`), over every pool made for it (reloads make new ones). */
export class PoolStats {
  /** Requests sent over a connection taken from the idle list. */
  reusedTotal = 0;
  /** Connections dialled. */
  dialledTotal = 0;
  readonly pools = new Set<PoolGauges>();

  idle(): number {
    let n = 0;
    for (const p of this.pools) n += p.idle.length;
    return n;
  }

  active(): number {
    let n = 0;
    for (const p of this.pools) n += p.active;
    return n;
  }
}

export interface HttpMetricsSnapshot {
  requests: [string, { classes: number[]; latencyBuckets: number[]; latencySum: number }][];
  pools: [string, { idle: number; active: number; reusedTotal: number; dialledTotal: number }][];
}

export class HttpMetrics {
  /** Key: `listener\0route`. */
  readonly requests = new Map<string, RequestCounters>();
  /** Key: `listener\0route\0upstream`. */
  readonly pools = new Map<string, PoolStats>();
  /** Gauges summed from workers' snapshots (supervisor only), by pool key. */
  readonly #summedGauges = new Map<string, { idle: number; active: number }>();

  route(listener: string, route: string): RequestCounters {
    const key = `${listener}\0${route}`;
    let c = this.requests.get(key);
    if (!c) this.requests.set(key, (c = new RequestCounters()));
    return c;
  }

  pool(listener: string, route: string, upstream: string): PoolStats {
    const key = `${listener}\0${route}\0${upstream}`;
    let p = this.pools.get(key);
    if (!p) this.pools.set(key, (p = new PoolStats()));
    return p;
  }

  snapshot(): HttpMetricsSnapshot {
    return {
      requests: [...this.requests].map(([k, c]) => [k, { classes: [...c.classes], latencyBuckets: [...c.latencyBuckets], latencySum: c.latencySum }]),
      pools: [...this.pools].map(([k, p]) => [k, { idle: p.idle() + this.#gauge(k).idle, active: p.active() + this.#gauge(k).active, reusedTotal: p.reusedTotal, dialledTotal: p.dialledTotal }]),
    };
  }

  /** Add a worker's snapshot. */
  add(s: HttpMetricsSnapshot): void {
    for (const [key, o] of s.requests) {
      const [listener, route] = key.split("\0") as [string, string];
      const c = this.route(listener, route);
      o.classes.forEach((v, i) => (c.classes[i]! += v));
      o.latencyBuckets.forEach((v, i) => (c.latencyBuckets[i]! += v));
      c.latencySum += o.latencySum;
    }
    for (const [key, o] of s.pools) {
      const [listener, route, upstream] = key.split("\0") as [string, string, string];
      const p = this.pool(listener, route, upstream);
      p.reusedTotal += o.reusedTotal;
      p.dialledTotal += o.dialledTotal;
      const g = this.#gauge(key);
      g.idle += o.idle;
      g.active += o.active;
    }
  }

  #gauge(key: string): { idle: number; active: number } {
    let g = this.#summedGauges.get(key);
    if (!g) this.#summedGauges.set(key, (g = { idle: 0, active: 0 }));
    return g;
  }

  /** Prometheus text lines, appended to `out` (src/control/metrics.ts toPrometheus). */
  toPrometheus(out: string[], escape: (v: string) => string): void {
    const split = (key: string) => key.split("\0").map(escape);
    out.push("# HELP switchyard_http_requests_total HTTP requests by route and status class (none: no response).", "# TYPE switchyard_http_requests_total counter");
    for (const [key, c] of this.requests) {
      const [listener, route] = split(key);
      STATUS_CLASSES.forEach((cls, i) => out.push(`switchyard_http_requests_total{listener="${listener}",route="${route}",class="${cls}"} ${c.classes[i]}`));
    }
    out.push("# HELP switchyard_http_upstream_latency_seconds Time from the request sent upstream to its response head.", "# TYPE switchyard_http_upstream_latency_seconds histogram");
    for (const [key, c] of this.requests) {
      const [listener, route] = split(key);
      const l = `listener="${listener}",route="${route}"`;
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((le, i) => out.push(`switchyard_http_upstream_latency_seconds_bucket{${l},le="${le}"} ${(cumulative += c.latencyBuckets[i]!)}`));
      cumulative += c.latencyBuckets[LATENCY_BUCKETS.length]!;
      out.push(`switchyard_http_upstream_latency_seconds_bucket{${l},le="+Inf"} ${cumulative}`,
        `switchyard_http_upstream_latency_seconds_sum{${l}} ${c.latencySum}`, `switchyard_http_upstream_latency_seconds_count{${l}} ${cumulative}`);
    }
    const pools = [...this.pools].map(([key, p]) => {
      const [listener, route, upstream] = split(key);
      const g = this.#gauge(key);
      return { l: `listener="${listener}",route="${route}",upstream="${upstream}"`, idle: p.idle() + g.idle, active: p.active() + g.active, p };
    });
    const family = (name: string, type: string, help: string, pick: (x: (typeof pools)[number]) => number) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const x of pools) out.push(`${name}{${x.l}} ${pick(x)}`);
    };
    family("switchyard_http_pool_idle", "gauge", "Idle upstream connections kept in the pool.", (x) => x.idle);
    family("switchyard_http_pool_active", "gauge", "Upstream connections carrying a request now (dialling included).", (x) => x.active);
    family("switchyard_http_pool_reused_total", "counter", "Requests sent over a pooled (idle) upstream connection.", (x) => x.p.reusedTotal);
    family("switchyard_http_pool_dialled_total", "counter", "Upstream connections dialled.", (x) => x.p.dialledTotal);
  }
}
