/**
 * Counters per listener and per route: connections (active, total), bytes each way, and closes by
 * reason. Plain number fields on long-lived objects, so counting on the hot path allocates nothing.
 * @module
 */
import { HttpMetrics, type HttpMetricsSnapshot } from "./http-metrics.ts";

export class Counters {
  active = 0;
  total = 0;
  /** Client → upstream. */
  bytesIn = 0;
  /** Upstream → client. */
  bytesOut = 0;
  /** Why connections ended, e.g. "done", "idle_timeout", "upstream_refused". */
  readonly closes = new Map<string, number>();
  /** Connections the gate refused, by reason (rateLimited, concurrencyLimited, cidrBlocklist…). */
  readonly blocked = new Map<string, number>();
  /** Times accepting paused because this process ran out of file descriptors, by EMFILE/ENFILE. */
  readonly acceptPauses = new Map<string, number>();
  /** Upstream connect time: counts per bucket of {@link CONNECT_BUCKETS} (not cumulative), sum in seconds. */
  readonly connectBuckets: number[] = new Array(CONNECT_BUCKETS.length + 1).fill(0);
  connectSum = 0;

  countClose(reason: string): void {
    this.closes.set(reason, (this.closes.get(reason) ?? 0) + 1);
  }

  countBlocked(reason: string): void {
    this.blocked.set(reason, (this.blocked.get(reason) ?? 0) + 1);
  }

  countAcceptPause(reason: string): void {
    this.acceptPauses.set(reason, (this.acceptPauses.get(reason) ?? 0) + 1);
  }

  /** One upstream connect that took `ms` milliseconds. */
  observeConnect(ms: number): void {
    const s = ms / 1000;
    let i = 0;
    while (i < CONNECT_BUCKETS.length && s > CONNECT_BUCKETS[i]!) i++;
    this.connectBuckets[i]!++;
    this.connectSum += s;
  }

  /** Add another process's counters (a worker's snapshot) to these. */
  add(o: CountersSnapshot): void {
    this.active += o.active;
    this.total += o.total;
    this.bytesIn += o.bytesIn;
    this.bytesOut += o.bytesOut;
    for (const [k, v] of Object.entries(o.closes)) this.closes.set(k, (this.closes.get(k) ?? 0) + v);
    for (const [k, v] of Object.entries(o.blocked)) this.blocked.set(k, (this.blocked.get(k) ?? 0) + v);
    for (const [k, v] of Object.entries(o.acceptPauses)) this.acceptPauses.set(k, (this.acceptPauses.get(k) ?? 0) + v);
    o.connectBuckets.forEach((v, i) => (this.connectBuckets[i]! += v));
    this.connectSum += o.connectSum;
  }

  toJSON(): CountersSnapshot {
    return {
      active: this.active, total: this.total, bytesIn: this.bytesIn, bytesOut: this.bytesOut,
      closes: Object.fromEntries(this.closes), blocked: Object.fromEntries(this.blocked), acceptPauses: Object.fromEntries(this.acceptPauses),
      connectBuckets: [...this.connectBuckets], connectSum: this.connectSum,
    };
  }
}

export interface CountersSnapshot {
  active: number;
  total: number;
  bytesIn: number;
  bytesOut: number;
  closes: Record<string, number>;
  blocked: Record<string, number>;
  acceptPauses: Record<string, number>;
  connectBuckets: number[];
  connectSum: number;
}

/** What a worker sends the supervisor when it scrapes (IPC), summed there. */
export interface MetricsSnapshot {
  listeners: [string, CountersSnapshot][];
  routes: [string, CountersSnapshot][];
  reloads: { ok: number; failed: number };
  relay: string;
  tlsHandshakes: [string, number][];
  tlsRefused: [string, number][];
  refused: [string, number][];
  /** Per-request metrics of http listeners (absent from a worker of an older version). */
  http?: HttpMetricsSnapshot;
  /** Pairs each kernel engine carries now, and streams uring handed to splice (absent from older workers). */
  relayPairs?: [string, number][];
  streamsToSplice?: number;
}

/** What the relay engines of this process say now (src/relay/engine.ts relaySample). */
export interface RelaySample {
  pairs: [string, number][];
  streamsToSplice: number;
}

/** Listener names and route keys (`listener\0route`) that have counters. */
export interface CounterNames {
  readonly listeners: ReadonlySet<string>;
  readonly routes: ReadonlySet<string>;
}

/** Upper bounds (seconds) of the upstream connect time histogram's buckets; +Inf follows. */
export const CONNECT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

/** Reasons that mean the connection ended well; every other close reason counts as an error. */
export const OK_REASONS = new Set(["done", "client_closed", "upstream_closed", "responded", "chained"]);

export class Metrics {
  readonly startedAt = Date.now();
  /** Configuration reloads by outcome. */
  readonly reloads = { ok: 0, failed: 0 };
  readonly listeners = new Map<string, Counters>();
  /** Key: `listener\0route`. */
  readonly routes = new Map<string, Counters>();
  /** The relay engine this process uses ("userspace", "splice"…), shown as a gauge. */
  relayEngine = "userspace";
  /** Worker processes running (supervisor only; 0 in a single process). */
  workers = 0;
  /**
   * The relay engines' own counts, read when metrics are taken: set in a process that relays
   * (src/cli/serve.ts, src/control/worker.ts); a sum of workers keeps what {@link add} brought instead.
   */
  sampleRelay: (() => RelaySample) | null = null;
  readonly relayPairs = new Map<string, number>();
  streamsToSplice = 0;
  /** TLS handshakes by `listener\0mode` (terminate, passthrough). */
  readonly tlsHandshakes = new Map<string, number>();
  /**
   * Connections refused before routing by `listener\0reason`, every protocol's: the series
   * switchyard_tls_refused_total, kept for one version beside {@link refused} (README, Metrics).
   */
  readonly tlsRefused = new Map<string, number>();
  /** Connections refused before routing by `listener\0protocol\0reason`. */
  readonly refused = new Map<string, number>();
  /** Per-request metrics (HTTP): requests by status class, upstream latency, pools (src/control/http-metrics.ts). */
  readonly http = new HttpMetrics();

  /** A refusal before routing: counted under both series. */
  countRefused(listener: string, protocol: string, reason: string): void {
    this.countTls(this.tlsRefused, listener, reason);
    const key = `${listener}\0${protocol}\0${reason}`;
    this.refused.set(key, (this.refused.get(key) ?? 0) + 1);
  }

  countTls(map: Map<string, number>, listener: string, label: string): void {
    const key = `${listener}\0${label}`;
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  listener(name: string): Counters {
    let c = this.listeners.get(name);
    if (!c) this.listeners.set(name, (c = new Counters()));
    return c;
  }

  route(listener: string, route: string): Counters {
    const key = `${listener}\0${route}`;
    let c = this.routes.get(key);
    if (!c) this.routes.set(key, (c = new Counters()));
    return c;
  }

  /** The listeners and routes that have counters now, for {@link forgetAddedSince}. */
  names(): CounterNames {
    return { listeners: new Set(this.listeners.keys()), routes: new Set(this.routes.keys()) };
  }

  /** Drop the counters made since `names()` returned `before`: a refused reload's, whose listeners never ran. */
  forgetAddedSince(before: CounterNames): void {
    for (const key of this.listeners.keys()) if (!before.listeners.has(key)) this.listeners.delete(key);
    for (const key of this.routes.keys()) if (!before.routes.has(key)) this.routes.delete(key);
  }

  snapshot(): MetricsSnapshot {
    return {
      listeners: [...this.listeners].map(([k, c]) => [k, c.toJSON()]),
      routes: [...this.routes].map(([k, c]) => [k, c.toJSON()]),
      reloads: { ...this.reloads },
      relay: this.relayEngine,
      tlsHandshakes: [...this.tlsHandshakes],
      tlsRefused: [...this.tlsRefused],
      refused: [...this.refused],
      http: this.http.snapshot(),
      ...this.relayNow(),
    };
  }

  /** The engines' counts: sampled in a relaying process, summed in the supervisor's. */
  private relayNow(): { relayPairs: [string, number][]; streamsToSplice: number } {
    if (!this.sampleRelay) return { relayPairs: [...this.relayPairs], streamsToSplice: this.streamsToSplice };
    const s = this.sampleRelay();
    return { relayPairs: s.pairs, streamsToSplice: s.streamsToSplice };
  }

  /** Add a worker's snapshot (reloads are the supervisor's own count, not summed). */
  add(s: MetricsSnapshot): void {
    this.relayEngine = s.relay;
    for (const [name, c] of s.listeners) this.listener(name).add(c);
    for (const [key, c] of s.routes) {
      const [listener, route] = key.split("\0") as [string, string];
      this.route(listener, route).add(c);
    }
    for (const [key, n] of s.tlsHandshakes) this.tlsHandshakes.set(key, (this.tlsHandshakes.get(key) ?? 0) + n);
    for (const [key, n] of s.tlsRefused) this.tlsRefused.set(key, (this.tlsRefused.get(key) ?? 0) + n);
    for (const [key, n] of s.refused) this.refused.set(key, (this.refused.get(key) ?? 0) + n);
    if (s.http) this.http.add(s.http);
    for (const [engine, n] of s.relayPairs ?? []) this.relayPairs.set(engine, (this.relayPairs.get(engine) ?? 0) + n);
    this.streamsToSplice += s.streamsToSplice ?? 0;
  }

  toJSON(): object {
    const relay = this.relayNow();
    return {
      relay: this.relayEngine,
      workers: this.workers,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      reloads: this.reloads,
      listeners: Object.fromEntries(this.listeners),
      routes: Object.fromEntries([...this.routes].map(([k, v]) => [k.replace("\0", "/"), v])),
      tlsHandshakes: Object.fromEntries([...this.tlsHandshakes].map(([k, v]) => [k.replace("\0", "/"), v])),
      tlsRefused: Object.fromEntries([...this.tlsRefused].map(([k, v]) => [k.replace("\0", "/"), v])),
      refused: Object.fromEntries([...this.refused].map(([k, v]) => [k.replaceAll("\0", "/"), v])),
      http: this.http.snapshot(),
      relayPairs: Object.fromEntries(relay.relayPairs),
      streamsToSplice: relay.streamsToSplice,
    };
  }

  /** Prometheus text exposition format (version 0.0.4). */
  toPrometheus(): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string, rows: [Record<string, string>, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) {
        const l = Object.entries(labels).map(([k, x]) => `${k}="${escape(x)}"`).join(",");
        out.push(l ? `${name}{${l}} ${v}` : `${name} ${v}`);
      }
    };
    const each = (pick: (c: Counters) => number) => {
      const rows: [Record<string, string>, number][] = [];
      for (const [key, c] of this.routes) {
        const [listener, route] = key.split("\0") as [string, string];
        rows.push([{ listener, route }, pick(c)]);
      }
      return rows;
    };
    family("switchyard_connections_active", "gauge", "Connections open now.", each((c) => c.active));
    family("switchyard_connections_total", "counter", "Connections accepted.", each((c) => c.total));
    family("switchyard_bytes_in_total", "counter", "Bytes relayed from clients to upstreams.", each((c) => c.bytesIn));
    family("switchyard_bytes_out_total", "counter", "Bytes relayed from upstreams to clients.", each((c) => c.bytesOut));
    const closes: [Record<string, string>, number][] = [];
    for (const [key, c] of this.routes) {
      const [listener, route] = key.split("\0") as [string, string];
      for (const [reason, n] of c.closes) closes.push([{ listener, route, reason }, n]);
    }
    family("switchyard_connections_closed_total", "counter", "Connections ended, by reason.", closes);
    const blocked: [Record<string, string>, number][] = [];
    for (const [listener, c] of this.listeners) for (const [reason, n] of c.blocked) blocked.push([{ listener, reason }, n]);
    family("switchyard_connections_blocked_total", "counter", "Connections refused by the gate, by reason.", blocked);
    const pauses: [Record<string, string>, number][] = [];
    for (const [listener, c] of this.listeners) for (const [reason, n] of c.acceptPauses) pauses.push([{ listener, reason }, n]);
    family("switchyard_accept_paused_total", "counter", "Times the listener stopped accepting because the process ran out of file descriptors (EMFILE: its limit, ENFILE: the system's).", pauses);
    out.push("# HELP switchyard_upstream_connect_seconds Time to connect to the upstream.", "# TYPE switchyard_upstream_connect_seconds histogram");
    for (const [key, c] of this.routes) {
      const [listener, route] = key.split("\0") as [string, string];
      const l = `listener="${escape(listener)}",route="${escape(route)}"`;
      let cumulative = 0;
      CONNECT_BUCKETS.forEach((le, i) => out.push(`switchyard_upstream_connect_seconds_bucket{${l},le="${le}"} ${(cumulative += c.connectBuckets[i]!)}`));
      cumulative += c.connectBuckets[CONNECT_BUCKETS.length]!;
      out.push(`switchyard_upstream_connect_seconds_bucket{${l},le="+Inf"} ${cumulative}`,
        `switchyard_upstream_connect_seconds_sum{${l}} ${c.connectSum}`, `switchyard_upstream_connect_seconds_count{${l}} ${cumulative}`);
    }
    family("switchyard_relay_engine", "gauge", "The relay engine in use (1 for the engine named).", [[{ engine: this.relayEngine }, 1]]);
    const relay = this.relayNow();
    family("switchyard_relay_pairs", "gauge", "Connections a kernel relay engine carries now, by engine (uring: natively accepted ones among them).", relay.relayPairs.map(([engine, n]) => [{ engine }, n]));
    family("switchyard_relay_streams_to_splice_total", "counter", "Connections the uring engine handed to splice as streams (relay auto: 1 MiB one way, nothing back).", [[{}, relay.streamsToSplice]]);
    if (this.workers > 0) family("switchyard_workers", "gauge", "Worker processes running.", [[{}, this.workers]]);
    const split = (map: Map<string, number>, label: string) => [...map].map(([k, n]) => {
      const [listener, value] = k.split("\0") as [string, string];
      return [{ listener, [label]: value }, n] as [Record<string, string>, number];
    });
    family("switchyard_tls_handshakes_total", "counter", "TLS connections by mode (terminate: handshake completed here; passthrough: hello read and passed on).", split(this.tlsHandshakes, "mode"));
    const refused = [...this.refused].map(([k, n]) => {
      const [listener, protocol, reason] = k.split("\0") as [string, string, string];
      return [{ listener, protocol, reason }, n] as [Record<string, string>, number];
    });
    family("switchyard_refused_total", "counter", "Connections refused before routing, by protocol and reason (malformed hello or startup message, fingerprint blocklist, missing SNI, handshake failure or timeout).", refused);
    family("switchyard_tls_refused_total", "counter", "Deprecated, removed in the next version: switchyard_refused_total without the protocol label (every protocol's refusals, as before).", split(this.tlsRefused, "reason"));
    if (this.http.requests.size > 0 || this.http.pools.size > 0) this.http.toPrometheus(out, escape);
    family("switchyard_reloads_total", "counter", "Configuration reloads, by result.", [[{ result: "ok" }, this.reloads.ok], [{ result: "failed" }, this.reloads.failed]]);
    out.push("# HELP switchyard_uptime_seconds Seconds since start.", "# TYPE switchyard_uptime_seconds gauge",
      `switchyard_uptime_seconds ${Math.round((Date.now() - this.startedAt) / 1000)}`);
    return out.join("\n") + "\n";
  }
}

function escape(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
