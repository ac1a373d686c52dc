/**
 * GET /metrics read by the reference Prometheus text parser (Python prometheus_client, Debian
 * python3-prometheus-client): the exposition parses, and the counters match the traffic sent, in one
 * process and summed over 2 workers.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { eventually, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { connect, echoServer } from "../helpers/peers.ts";

const PARSER = join(import.meta.dir, "../helpers/parse-metrics.py");
type Families = Record<string, { type: string; samples: { name: string; labels: Record<string, string>; value: number }[] }>;

async function scrape(admin: number): Promise<Families> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const proc = Bun.spawn(["/usr/bin/python3", PARSER], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`prometheus_client rejected the exposition: ${err}\n${text}`);
  return JSON.parse(out) as Families;
}

const value = (f: Families, family: string, sample: string, labels: Record<string, string>) =>
  f[family]?.samples.find((s) => s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

const CONNECTIONS = 40;
const HELD = 6;
const PAYLOAD = "x".repeat(100);

for (const workers of [1, 2]) {
  test(`metrics: parsed by prometheus_client, counters match the traffic (workers ${workers})`, async () => {
    const echo = echoServer();
    let p: RunningProxy | null = null;
    try {
      p = await startProxy(["serve", "-c", writeConfig({
        workers,
        admin: { listen: "127.0.0.1:0" },
        log: { access: "off" },
        listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] }],
      }, tempDir())]);
      const admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);
      for (let i = 0; i < CONNECTIONS; i += 8) {
        await Promise.all(Array.from({ length: 8 }, async () => {
          const c = await connect(p!.port);
          c.socket.write(PAYLOAD);
          await eventually(() => c.receivedText() === PAYLOAD, 5000, "the echo");
          c.socket.end();
          await c.closed;
        }));
      }
      // Held open: the engines' pairs are a gauge, summed over workers (natively accepted: uring's).
      const held = await Promise.all(Array.from({ length: HELD }, async () => {
        const c = await connect(p!.port);
        c.socket.write(PAYLOAD);
        await eventually(() => c.receivedText() === PAYLOAD, 5000, "the echo");
        return c;
      }));
      const during = await scrape(admin);
      expect(during.switchyard_relay_pairs!.type).toBe("gauge");
      expect(value(during, "switchyard_relay_pairs", "switchyard_relay_pairs", { engine: "uring" })).toBe(HELD);
      for (const c of held) {
        c.socket.end();
        await c.closed;
      }
      expect((await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST" })).status).toBe(200);
      const labels = { listener: "edge", route: "r" };
      let f: Families = {};
      const deadline = Date.now() + 10_000;
      do f = await scrape(admin);
      while (value(f, "switchyard_connections_active", "switchyard_connections_active", labels) !== 0 && Date.now() < deadline);

      expect(f.switchyard_connections!.type).toBe("counter"); // the parser names a counter family without _total
      const all = CONNECTIONS + HELD;
      expect(value(f, "switchyard_connections", "switchyard_connections_total", labels)).toBe(all);
      expect(value(f, "switchyard_bytes_in", "switchyard_bytes_in_total", labels)).toBe(all * PAYLOAD.length);
      expect(value(f, "switchyard_bytes_out", "switchyard_bytes_out_total", labels)).toBe(all * PAYLOAD.length);
      const closed = f.switchyard_connections_closed!.samples.filter((s) => s.name === "switchyard_connections_closed_total" && s.labels.route === "r");
      expect(closed.reduce((n, s) => n + s.value, 0)).toBe(all);
      expect(f.switchyard_upstream_connect_seconds!.type).toBe("histogram");
      expect(value(f, "switchyard_upstream_connect_seconds", "switchyard_upstream_connect_seconds_count", labels)).toBe(all);
      expect(value(f, "switchyard_upstream_connect_seconds", "switchyard_upstream_connect_seconds_bucket", { ...labels, le: "+Inf" })).toBe(all);
      expect(value(f, "switchyard_relay_pairs", "switchyard_relay_pairs", { engine: "uring" })).toBe(0);
      expect(f.switchyard_relay_streams_to_splice!.type).toBe("counter");
      expect(f.switchyard_relay_engine!.samples[0]!.value).toBe(1);
      expect(value(f, "switchyard_reloads", "switchyard_reloads_total", { result: "ok" })).toBe(1);
      if (workers > 1) expect(value(f, "switchyard_workers", "switchyard_workers", {})).toBe(workers);
      const blocked = await (await fetch(`http://127.0.0.1:${admin}/blocked`)).json();
      expect(blocked).toEqual({ total: {}, listeners: { edge: {} } });
    } finally {
      await p?.stop();
      echo.stop();
    }
  }, 60_000);
}
