/** The gate's decisions over the heap table (the shared one runs the same LimitTable suite). */
import { describe, expect, test } from "bun:test";
import type { ListenerConfig } from "../../src/config/types.ts";
import type { GateConfig } from "../../src/protect/config.ts";
import { ListenerGate, release, useLimitTable, type GateTicket } from "../../src/protect/gate.ts";
import { LocalLimitTable } from "../../src/protect/limit-table.ts";
import { parseCidr } from "../../src/net/ip.ts";

let now = 0;
useLimitTable(new LocalLimitTable(() => now));
let n = 0;

function gate(g: Partial<GateConfig>, maxConnections = 0): ListenerGate {
  const gateConfig: GateConfig = { blocklist: [], allowlist: [], maxConcurrentPerIp: 0, rateLimit: null, ...g };
  return new ListenerGate({ name: `l${n++}`, maxConnections, gate: gateConfig } as unknown as ListenerConfig);
}

const cidr = (t: string) => parseCidr(t)!;

describe("ListenerGate", () => {
  test("nothing configured: disabled", () => {
    expect(gate({}).enabled).toBe(false);
  });

  test("blocklist before allowlist; an IPv4-mapped client is judged as IPv4", () => {
    const g = gate({ blocklist: [cidr("10.1.0.0/16")], allowlist: [cidr("10.0.0.0/8")] });
    expect(g.admit("10.1.2.3")).toBe("cidrBlocklist");
    expect(g.admit("::ffff:10.1.2.3")).toBe("cidrBlocklist");
    expect(g.admit("192.0.2.1")).toBe("cidrAllowlist");
    expect(typeof g.admit("10.2.0.1")).toBe("object");
  });

  test("maxConnections: the place comes back when the connection ends", () => {
    const g = gate({}, 2);
    const a = g.admit("192.0.2.1") as GateTicket;
    g.admit("192.0.2.2");
    expect(g.admit("192.0.2.3")).toBe("maxConnections");
    release(a);
    expect(typeof g.admit("192.0.2.3")).toBe("object");
    expect(g.open()).toBe(2);
  });

  test("per-IP concurrency is per client address; a refused one gives back its listener place", () => {
    const g = gate({ maxConcurrentPerIp: 1 }, 10);
    const first = g.admit("192.0.2.1") as GateTicket;
    expect(g.admit("192.0.2.1")).toBe("concurrencyLimited");
    expect(g.open()).toBe(1);
    expect(typeof g.admit("192.0.2.9")).toBe("object");
    release(first);
    expect(typeof g.admit("192.0.2.1")).toBe("object");
  });

  test("a per-IP rate alone counts nothing as open (nothing to give back)", () => {
    const g = gate({ rateLimit: { connectionsPerSecond: 1, burst: 2 } });
    const t = g.admit("192.0.2.1") as GateTicket;
    expect(t).toEqual({ listener: null, ip: null });
    g.admit("192.0.2.1");
    expect(g.admit("192.0.2.1")).toBe("rateLimited");
    now += 1000;
    expect(typeof g.admit("192.0.2.1")).toBe("object");
  });
});
