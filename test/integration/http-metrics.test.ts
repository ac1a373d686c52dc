/**
 * Per-route HTTP metrics on GET /metrics of the admin API, with Debian nginx as the upstream: requests
 * by route and status class, the upstream latency histogram, the pool's gauges and counters, and the
 * connection-level series of a served connection under route `(per-request)` (not `-`, which keeps
 * counting connections that never got a route). The text is parsed by prometheus_client, so a
 * malformed exposition fails here too. Once in one process and once with 2 workers (summed by the
 * supervisor).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { startNginx, type Nginx } from "../helpers/nginx.ts";

const PARSER = join(import.meta.dir, "../helpers/parse-metrics.py");
const dec = new TextDecoder();

type Sample = { name: string; labels: Record<string, string>; value: number };

async function scrape(admin: number): Promise<Sample[]> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const proc = Bun.spawn(["/usr/bin/python3", PARSER], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) throw new Error(`prometheus_client refused the exposition:\n${await new Response(proc.stderr).text()}\n${text}`);
  const families = JSON.parse(out) as Record<string, { samples: Sample[] }>;
  return Object.values(families).flatMap((f) => f.samples);
}

/** The value of the one sample named `name` whose labels include `labels` (undefined if none). */
function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${hits.length} samples of ${name} ${JSON.stringify(labels)}`);
  return hits[0]?.value;
}

/** Send `requests` (raw heads) one after another on one keep-alive connection; resolves with the statuses. */
async function onOneConnection(port: number, requests: string[]): Promise<number[]> {
  const statuses: number[] = [];
  let buf = "";
  let wake: (() => void) | null = null;
  let closed = false;
  const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: {
    data(_s, d) { buf += dec.decode(d); wake?.(); },
    close() { closed = true; wake?.(); },
  } });
  for (const r of requests) {
    s.write(r);
    for (;;) {
      const m = /^HTTP\/1\.1 (\d+)[^\r]*\r\n((?:[^\r]+\r\n)*)\r\n/.exec(buf);
      const len = !m ? -1 : r.startsWith("HEAD ") ? 0 : Number(/content-length: (\d+)/i.exec(m[2]!)?.[1] ?? 0);
      if (m && buf.length >= m[0].length + len) {
        statuses.push(Number(m[1]));
        buf = buf.slice(m[0].length + len);
        break;
      }
      if (closed) throw new Error(`closed after ${statuses.length} answers`);
      await new Promise<void>((r) => (wake = r));
    }
  }
  s.end();
  return statuses;
}

/** Send bytes and wait for the close; resolves with what came back. */
async function once(port: number, bytes: string): Promise<string> {
  let got = "";
  const done = Promise.withResolvers<string>();
  const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: {
    data(_s, d) { got += dec.decode(d); },
    close() { done.resolve(got); },
  } });
  s.write(bytes);
  return done.promise;
}

let nginx: Nginx;
beforeAll(async () => { nginx = await startNginx("metrics"); });
afterAll(async () => { await nginx?.stop(); });

for (const workers of [1, 2]) {
  describe(`${workers === 1 ? "one process" : "2 workers"}`, () => {
    let proxy: RunningProxy;
    let admin: number;
    beforeAll(async () => {
      proxy = await startProxy(["serve", "-c", writeConfig({
        workers, admin: { listen: "127.0.0.1:0" },
        listeners: [{
          name: "web", listen: "127.0.0.1:0", protocol: "http",
          routes: [
            { name: "api", match: { host: "api.test" }, upstreams: [`127.0.0.1:${nginx.port}`] },
            { name: "teapot", match: { host: "tea.test" }, respond: { status: 418, body: "short and stout" } },
          ],
        }],
      })]);
      admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(proxy.stderr())![1]);
    });
    afterAll(async () => { await proxy?.stop(); });

    test("requests by route and class, upstream latency, pool gauges, and connections under (per-request)", async () => {
      const api = Array.from({ length: 5 }, (_, i) => `GET /n${i} HTTP/1.1\r\nHost: api.test\r\n\r\n`);
      expect(await onOneConnection(proxy.port, [...api, "GET / HTTP/1.1\r\nHost: tea.test\r\n\r\n", "GET /x HTTP/1.1\r\nHost: nowhere.test\r\n\r\n"]))
        .toEqual([200, 200, 200, 200, 200, 418, 404]);
      expect(await onOneConnection(proxy.port, ["HEAD / HTTP/1.1\r\nHost: tea.test\r\n\r\n"])).toEqual([418]);
      // A malformed first head: refused before the session (400), and the connection never got a route.
      expect(await once(proxy.port, "GET / HTTP/1.1\r\nHost : api.test\r\n\r\n")).toStartWith("HTTP/1.1 400 ");
      // A malformed second head: refused by the session, also a request of no route.
      expect(await once(proxy.port, "GET /ok HTTP/1.1\r\nHost: api.test\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n"))
        .toMatch(/^HTTP\/1\.1 200 [^]*HTTP\/1\.1 400 /);

      const m = await scrape(admin);
      const req = (route: string, cls: string) => value(m, "switchyard_http_requests_total", { listener: "web", route, class: cls });
      expect(req("api", "2xx")).toBe(6);
      expect(req("api", "5xx")).toBe(0);
      expect(req("teapot", "4xx")).toBe(2);
      expect(req("-", "4xx")).toBe(3); // 404 no_route, the refused first head, the refused second head
      expect(req("-", "2xx")).toBe(0);

      const l = { listener: "web", route: "api" };
      expect(value(m, "switchyard_http_upstream_latency_seconds_count", l)).toBe(6);
      expect(value(m, "switchyard_http_upstream_latency_seconds_bucket", { ...l, le: "+Inf" })).toBe(6);
      expect(value(m, "switchyard_http_upstream_latency_seconds_sum", l)!).toBeGreaterThan(0);
      expect(value(m, "switchyard_http_upstream_latency_seconds_sum", l)!).toBeLessThan(6); // seconds, not ms
      expect(value(m, "switchyard_http_upstream_latency_seconds_count", { listener: "web", route: "teapot" })).toBe(0);

      const p = { listener: "web", route: "api", upstream: `127.0.0.1:${nginx.port}` };
      // Two client connections reached api, one after the other: each dial after the first found the idle one
      // in its worker's pool, so dialled + reused = 6 requests and dialled ≤ workers.
      const dialled = value(m, "switchyard_http_pool_dialled_total", p)!;
      expect(dialled).toBeGreaterThanOrEqual(1);
      expect(dialled).toBeLessThanOrEqual(workers);
      expect(value(m, "switchyard_http_pool_reused_total", p)).toBe(6 - dialled);
      expect(value(m, "switchyard_http_pool_idle", p)).toBe(dialled);
      expect(value(m, "switchyard_http_pool_active", p)).toBe(0);

      const conns = (route: string) => value(m, "switchyard_connections_total", { listener: "web", route });
      expect(conns("(per-request)")).toBe(3);
      expect(conns("-")).toBe(1); // only the connection refused before its first request was read
      expect(value(m, "switchyard_connections_active", { listener: "web", route: "(per-request)" })).toBe(0);
      expect(value(m, "switchyard_bytes_in_total", { listener: "web", route: "(per-request)" })!).toBeGreaterThan(0);
    });

    if (workers === 2) test("a worker that stops hands on its counters, not its pool gauges (its connections are gone)", async () => {
      const before = await scrape(admin);
      const p = { listener: "web", route: "api", upstream: `127.0.0.1:${nginx.port}` };
      const dialled = value(before, "switchyard_http_pool_dialled_total", p)!;
      const children = readFileSync(`/proc/${proxy.pid}/task/${proxy.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
      for (const pid of children) process.kill(pid, "SIGTERM");
      await eventually(() => (proxy.stderr().match(/worker exited/g) ?? []).length >= children.length, 20_000, "both workers exited");
      const after = await scrape(admin);
      expect(value(after, "switchyard_http_pool_dialled_total", p)).toBe(dialled);
      expect(value(after, "switchyard_http_requests_total", { listener: "web", route: "api", class: "2xx" })).toBe(6);
      expect(value(after, "switchyard_http_pool_idle", p)).toBe(0);
      expect(value(after, "switchyard_http_pool_active", p)).toBe(0);
    });
  });
}
