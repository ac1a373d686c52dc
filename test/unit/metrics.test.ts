import { describe, expect, test } from "bun:test";
import { CONNECT_BUCKETS, Counters, Metrics, OK_REASONS } from "../../src/control/metrics.ts";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  /** Family name → { help, type }, in order of appearance. */
  families: Map<string, { help: string; type: string }>;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A strict parser of the Prometheus text format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format): fails the test on
 * any line it does not understand, a sample before its family's HELP and TYPE, a family split in two,
 * or a label value with a bad escape.
 */
function parseExposition(text: string): Exposition {
  expect(text.endsWith("\n")).toBe(true);
  const families = new Map<string, { help: string; type: string }>();
  const samples: Sample[] = [];
  let current: string | null = null;
  const closed = new Set<string>();
  for (const line of text.slice(0, -1).split("\n")) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^# HELP (\S+) (.+)$/))) {
      const name = m[1]!;
      expect(name).toMatch(METRIC_NAME);
      expect(families.has(name)).toBe(false);
      if (current) closed.add(current);
      current = name;
      families.set(name, { help: m[2]!, type: "" });
    } else if ((m = line.match(/^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/))) {
      expect(m[1]).toBe(current!);
      families.get(m[1]!)!.type = m[2]!;
    } else {
      m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
      if (!m) throw new Error(`not a Prometheus line: ${JSON.stringify(line)}`);
      const name = m[1]!;
      // A histogram's samples are NAME_bucket, NAME_sum and NAME_count.
      const family = families.get(current!)?.type === "histogram" ? name.replace(/_(bucket|sum|count)$/, "") : name;
      expect(family).toBe(current!);
      expect(closed.has(family)).toBe(false);
      expect(families.get(family)!.type).not.toBe("");
      const value = Number(m[3]);
      expect(Number.isNaN(value)).toBe(false);
      samples.push({ name, labels: parseLabels(m[2] ?? ""), value });
    }
  }
  for (const [name, f] of families) {
    expect(f.type, `family ${name} has no TYPE`).not.toBe("");
  }
  return { families, samples };
}

/** `k="v",k2="v2"` with the format's three escapes: \\, \" and \n. */
function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    const name = text.slice(i, eq);
    expect(name).toMatch(LABEL_NAME);
    expect(text[eq + 1]).toBe('"');
    let value = "";
    let j = eq + 2;
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`unterminated label value in ${text}`);
      if (c === '"') break;
      if (c === "\n") throw new Error("raw newline in a label value");
      if (c === "\\") {
        const e = text[j + 1];
        if (e === "\\") value += "\\";
        else if (e === '"') value += '"';
        else if (e === "n") value += "\n";
        else throw new Error(`bad escape \\${e} in ${text}`);
        j += 2;
      } else {
        value += c;
        j++;
      }
    }
    expect(Object.hasOwn(labels, name)).toBe(false);
    labels[name] = value;
    i = j + 1;
    if (i < text.length) {
      expect(text[i]).toBe(",");
      i++;
    }
  }
  return labels;
}

function valueOf(e: Exposition, name: string, labels: Record<string, string>): number | undefined {
  return e.samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
}

const FAMILIES = {
  switchyard_connections_active: "gauge",
  switchyard_connections_total: "counter",
  switchyard_bytes_in_total: "counter",
  switchyard_bytes_out_total: "counter",
  switchyard_connections_closed_total: "counter",
  switchyard_connections_blocked_total: "counter",
  switchyard_accept_paused_total: "counter",
  switchyard_upstream_connect_seconds: "histogram",
  switchyard_relay_engine: "gauge",
  switchyard_relay_pairs: "gauge",
  switchyard_relay_streams_to_splice_total: "counter",
  switchyard_reloads_total: "counter",
  switchyard_tls_handshakes_total: "counter",
  switchyard_refused_total: "counter",
  switchyard_tls_refused_total: "counter",
  switchyard_uptime_seconds: "gauge",
};

describe("Counters", () => {
  test("countClose counts per reason", () => {
    const c = new Counters();
    c.countClose("done");
    c.countClose("done");
    c.countClose("idle_timeout");
    expect(Object.fromEntries(c.closes)).toEqual({ done: 2, idle_timeout: 1 });
  });

  test("toJSON has every counter", () => {
    const c = new Counters();
    c.active = 1;
    c.total = 2;
    c.bytesIn = 3;
    c.bytesOut = 4;
    c.countClose("done");
    expect(c.toJSON()).toEqual({ active: 1, total: 2, bytesIn: 3, bytesOut: 4, closes: { done: 1 }, blocked: {}, acceptPauses: {}, connectBuckets: new Array(14).fill(0), connectSum: 0 });
  });

  test("OK_REASONS are the clean endings", () => {
    expect([...OK_REASONS].sort()).toEqual(["chained", "client_closed", "done", "responded", "upstream_closed"]);
  });
});

describe("Metrics registry", () => {
  test("listener() and route() return the same counters for the same names", () => {
    const m = new Metrics();
    expect(m.listener("edge")).toBe(m.listener("edge"));
    expect(m.route("edge", "api")).toBe(m.route("edge", "api"));
    expect(m.route("edge", "api")).not.toBe(m.route("edge", "web"));
    expect(m.route("a", "b")).not.toBe(m.route("b", "a"));
  });

  test("toJSON names routes listener/route", () => {
    const m = new Metrics();
    m.listener("edge").total = 5;
    m.route("edge", "api").bytesIn = 7;
    const json = m.toJSON() as { uptimeSeconds: number; listeners: Record<string, unknown>; routes: Record<string, unknown> };
    expect(json.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(JSON.stringify(json.listeners))).toEqual({ edge: { ...new Counters().toJSON(), total: 5 } });
    expect(JSON.parse(JSON.stringify(json.routes))).toEqual({ "edge/api": { ...new Counters().toJSON(), bytesIn: 7 } });
  });
});

describe("summing workers", () => {
  test("a worker's snapshot adds into the supervisor's registry, per listener and route", () => {
    const worker = (n: number) => {
      const m = new Metrics();
      m.listener("edge").total = n;
      m.listener("edge").countBlocked("rateLimited");
      m.listener("edge").countAcceptPause("EMFILE");
      const r = m.route("edge", "api");
      r.bytesIn = 10 * n;
      r.countClose("done");
      r.observeConnect(0.3); // ms: the 0.0005 s bucket
      r.observeConnect(30); // the 0.05 s bucket
      return m.snapshot();
    };
    const sum = new Metrics();
    sum.add(worker(1));
    sum.add(worker(2));
    expect(sum.listener("edge").total).toBe(3);
    expect(Object.fromEntries(sum.listener("edge").blocked)).toEqual({ rateLimited: 2 });
    const api = sum.route("edge", "api");
    expect(api.bytesIn).toBe(30);
    expect(Object.fromEntries(api.closes)).toEqual({ done: 2 });
    expect(api.connectBuckets[0]).toBe(2);
    expect(api.connectBuckets[CONNECT_BUCKETS.indexOf(0.05)]).toBe(2);
    expect(api.connectSum).toBeCloseTo(2 * 0.0303, 6);
    const e = parseExposition(sum.toPrometheus());
    expect(valueOf(e, "switchyard_upstream_connect_seconds_count", { listener: "edge", route: "api" })).toBe(4);
    expect(valueOf(e, "switchyard_upstream_connect_seconds_bucket", { listener: "edge", route: "api", le: "0.01" })).toBe(2);
    expect(valueOf(e, "switchyard_upstream_connect_seconds_bucket", { listener: "edge", route: "api", le: "+Inf" })).toBe(4);
    expect(valueOf(e, "switchyard_connections_blocked_total", { listener: "edge", reason: "rateLimited" })).toBe(2);
    expect(valueOf(e, "switchyard_accept_paused_total", { listener: "edge", reason: "EMFILE" })).toBe(2);
  });
});

describe("Prometheus text", () => {
  test("with no traffic: every family still has HELP and TYPE, and uptime is a sample", () => {
    const e = parseExposition(new Metrics().toPrometheus());
    expect(Object.fromEntries([...e.families].map(([n, f]) => [n, f.type]))).toEqual(FAMILIES);
    expect(e.samples.map((s) => s.name)).toEqual(["switchyard_relay_engine", "switchyard_relay_streams_to_splice_total", "switchyard_reloads_total", "switchyard_reloads_total", "switchyard_uptime_seconds"]);
  });

  test("the relay engines' pairs and streams: sampled where a process relays, summed over workers' snapshots", () => {
    const worker = (uring: number, splice: number, streams: number) => {
      const m = new Metrics();
      m.sampleRelay = () => ({ pairs: [["uring", uring], ["splice", splice]], streamsToSplice: streams });
      return m.snapshot();
    };
    const sum = new Metrics();
    sum.add(worker(3, 1, 2));
    sum.add(worker(4, 0, 5));
    const e = parseExposition(sum.toPrometheus());
    expect(valueOf(e, "switchyard_relay_pairs", { engine: "uring" })).toBe(7);
    expect(valueOf(e, "switchyard_relay_pairs", { engine: "splice" })).toBe(1);
    expect(valueOf(e, "switchyard_relay_streams_to_splice_total", {})).toBe(7);
    expect(sum.toJSON()).toMatchObject({ relayPairs: { uring: 7, splice: 1 }, streamsToSplice: 7 });
  });

  test("samples match the counters, per listener and route", () => {
    const m = new Metrics();
    const api = m.route("edge", "api");
    api.active = 2;
    api.total = 10;
    api.bytesIn = 1234;
    api.bytesOut = 56789;
    api.countClose("done");
    api.countClose("done");
    api.countClose("upstream_refused");
    const web = m.route("edge", "web");
    web.total = 1;
    web.countClose("idle_timeout");

    const e = parseExposition(m.toPrometheus());
    expect(Object.fromEntries([...e.families].map(([n, f]) => [n, f.type]))).toEqual(FAMILIES);
    const apiLabels = { listener: "edge", route: "api" };
    const webLabels = { listener: "edge", route: "web" };
    expect(valueOf(e, "switchyard_connections_active", apiLabels)).toBe(2);
    expect(valueOf(e, "switchyard_connections_total", apiLabels)).toBe(10);
    expect(valueOf(e, "switchyard_bytes_in_total", apiLabels)).toBe(1234);
    expect(valueOf(e, "switchyard_bytes_out_total", apiLabels)).toBe(56789);
    expect(valueOf(e, "switchyard_connections_closed_total", { ...apiLabels, reason: "done" })).toBe(2);
    expect(valueOf(e, "switchyard_connections_closed_total", { ...apiLabels, reason: "upstream_refused" })).toBe(1);
    expect(valueOf(e, "switchyard_connections_active", webLabels)).toBe(0);
    expect(valueOf(e, "switchyard_connections_total", webLabels)).toBe(1);
    expect(valueOf(e, "switchyard_connections_closed_total", { ...webLabels, reason: "idle_timeout" })).toBe(1);
    // One sample per route in each per-route family, one per (route, reason) in closes, reloads (ok, failed), uptime.
    // Plus per route the connect-time histogram (13 buckets, +Inf, _sum, _count), the relay engine gauge
    // and the streams-to-splice counter (no engine pairs: nothing sampled them).
    expect(e.samples.length).toBe(4 * 2 + 3 + 2 + 1 + 2 * 16 + 1 + 1);
  });

  test("label values with quotes, backslashes and newlines are escaped and read back intact", () => {
    const m = new Metrics();
    const listener = 'say "hi"\\now';
    const route = "line1\nline2";
    m.route(listener, route).total = 3;
    m.route(listener, route).countClose('odd "reason"\\');
    const text = m.toPrometheus();
    expect(text).toContain(String.raw`listener="say \"hi\"\\now",route="line1\nline2"`);
    const e = parseExposition(text);
    expect(valueOf(e, "switchyard_connections_total", { listener, route })).toBe(3);
    expect(valueOf(e, "switchyard_connections_closed_total", { listener, route, reason: 'odd "reason"\\' })).toBe(1);
  });

  test("names with a slash, spaces and non-ASCII pass through unchanged", () => {
    const m = new Metrics();
    m.route("edge/1", "répertoire api").bytesOut = 9;
    const e = parseExposition(m.toPrometheus());
    expect(valueOf(e, "switchyard_bytes_out_total", { listener: "edge/1", route: "répertoire api" })).toBe(9);
  });

  test("large byte counts are written as numbers Prometheus reads back exactly", () => {
    const m = new Metrics();
    m.route("l", "r").bytesIn = 2 ** 53 - 1;
    const e = parseExposition(m.toPrometheus());
    expect(valueOf(e, "switchyard_bytes_in_total", { listener: "l", route: "r" })).toBe(2 ** 53 - 1);
  });

  test("the text changes with the counters", () => {
    const m = new Metrics();
    const c = m.route("l", "r");
    c.total = 1;
    expect(valueOf(parseExposition(m.toPrometheus()), "switchyard_connections_total", { listener: "l", route: "r" })).toBe(1);
    c.total = 2;
    expect(valueOf(parseExposition(m.toPrometheus()), "switchyard_connections_total", { listener: "l", route: "r" })).toBe(2);
  });
});
