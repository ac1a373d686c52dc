/**
 * Counters per listener and per route: connections (active, total), bytes each way, and closes by
 * reason. Plain number fields on long-lived objects, so counting on the hot path allocates nothing.
 * @module
 */

export class Counters {
  active = 0;
  total = 0;
  /** Client → upstream. */
  bytesIn = 0;
  /** Upstream → client. */
  bytesOut = 0;
  /** Why connections ended, e.g. "done", "idle_timeout", "upstream_refused". */
  readonly closes = new Map<string, number>();

  countClose(reason: string): void {
    this.closes.set(reason, (this.closes.get(reason) ?? 0) + 1);
  }

  toJSON(): object {
    return { active: this.active, total: this.total, bytesIn: this.bytesIn, bytesOut: this.bytesOut, closes: Object.fromEntries(this.closes) };
  }
}

/** Reasons that mean the connection ended well; every other close reason counts as an error. */
export const OK_REASONS = new Set(["done", "client_closed", "upstream_closed", "responded"]);

export class Metrics {
  readonly startedAt = Date.now();
  /** Configuration reloads by outcome. */
  readonly reloads = { ok: 0, failed: 0 };
  readonly listeners = new Map<string, Counters>();
  /** Key: `listener\0route`. */
  readonly routes = new Map<string, Counters>();
  /** TLS handshakes by `listener\0mode` (terminate, passthrough). */
  readonly tlsHandshakes = new Map<string, number>();
  /** Connections refused before routing by `listener\0reason` (malformed hello, blocked JA3, …). */
  readonly tlsRefused = new Map<string, number>();

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

  toJSON(): object {
    return {
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      reloads: this.reloads,
      listeners: Object.fromEntries(this.listeners),
      routes: Object.fromEntries([...this.routes].map(([k, v]) => [k.replace("\0", "/"), v])),
      tlsHandshakes: Object.fromEntries([...this.tlsHandshakes].map(([k, v]) => [k.replace("\0", "/"), v])),
      tlsRefused: Object.fromEntries([...this.tlsRefused].map(([k, v]) => [k.replace("\0", "/"), v])),
    };
  }

  /** Prometheus text exposition format (version 0.0.4). */
  toPrometheus(): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string, rows: [Record<string, string>, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) out.push(`${name}{${Object.entries(labels).map(([k, x]) => `${k}="${escape(x)}"`).join(",")}} ${v}`);
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
    const split = (map: Map<string, number>, label: string) => [...map].map(([k, n]) => {
      const [listener, value] = k.split("\0") as [string, string];
      return [{ listener, [label]: value }, n] as [Record<string, string>, number];
    });
    family("switchyard_tls_handshakes_total", "counter", "TLS connections by mode (terminate: handshake completed here; passthrough: hello read and passed on).", split(this.tlsHandshakes, "mode"));
    family("switchyard_tls_refused_total", "counter", "Connections refused before routing, by reason (malformed hello, fingerprint blocklist, missing SNI, handshake failure or timeout).", split(this.tlsRefused, "reason"));
    family("switchyard_reloads_total", "counter", "Configuration reloads, by result.", [[{ result: "ok" }, this.reloads.ok], [{ result: "failed" }, this.reloads.failed]]);
    out.push("# HELP switchyard_uptime_seconds Seconds since start.", "# TYPE switchyard_uptime_seconds gauge",
      `switchyard_uptime_seconds ${Math.round((Date.now() - this.startedAt) / 1000)}`);
    return out.join("\n") + "\n";
  }
}

function escape(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
