/**
 * The gate's configuration keys (SPEC.md `protection` of a listener: rateLimit, maxConcurrentPerIp,
 * allowlist, blocklist; a route's maxConnectionsPerSecond and burst). The TLS keys of `protection`
 * (ja3Blocklist, ja4Blocklist, requireSni) are read elsewhere: each reader takes only its own keys
 * from the object the schema has already checked.
 * @module
 */
import type { JsonPath } from "../config/jsonc.ts";
import type { ConfigReader, Obj } from "../config/reader.ts";
import { parseCidr, type Cidr } from "../net/ip.ts";

/** A token bucket: `connectionsPerSecond` on average, up to `burst` at once. */
export interface RateConfig {
  readonly connectionsPerSecond: number;
  readonly burst: number;
}

/** The gate of a listener: checks that need no bytes, in this order. */
export interface GateConfig {
  /** Client addresses refused outright. */
  readonly blocklist: readonly Cidr[];
  /** When not empty, only these client addresses are admitted. */
  readonly allowlist: readonly Cidr[];
  /** Open connections per client IP, across workers; 0 = unlimited. */
  readonly maxConcurrentPerIp: number;
  /** New connections per client IP, across workers; null = unlimited. */
  readonly rateLimit: RateConfig | null;
}

/** Every key SPEC.md allows in `protection`, including those of the TLS stage. */
export const PROTECTION_KEYS = ["rateLimit", "maxConcurrentPerIp", "allowlist", "blocklist", "ja3Blocklist", "ja4Blocklist", "requireSni"];

const MAX_RATE = 10_000_000;

/** The gate's keys of a listener's (already key-checked) `protection` object. */
export function readGateConfig(r: ConfigReader, protection: Obj, path: JsonPath): GateConfig {
  const rate = protection.rateLimit === undefined ? undefined : r.object(protection.rateLimit, [...path, "rateLimit"], ["connectionsPerSecond", "burst"]);
  return {
    blocklist: readCidrs(r, protection, "blocklist", path),
    allowlist: readCidrs(r, protection, "allowlist", path),
    maxConcurrentPerIp: r.integer(protection, "maxConcurrentPerIp", path, 0, 0, MAX_RATE),
    rateLimit: rate ? readRate(r, rate, "connectionsPerSecond", [...path, "rateLimit"]) : null,
  };
}

/** A route's maxConnectionsPerSecond (and burst, default: one second's worth); null when unset. */
export function readRouteRate(r: ConfigReader, route: Obj, path: JsonPath): RateConfig | null {
  if (route.maxConnectionsPerSecond === undefined) {
    if (route.burst !== undefined) r.fail([...path, "burst"], "burst needs maxConnectionsPerSecond");
    return null;
  }
  return readRate(r, route, "maxConnectionsPerSecond", path);
}

function readRate(r: ConfigReader, o: Obj, key: string, path: JsonPath): RateConfig | null {
  if (o[key] === undefined) return r.fail(path, `${key} is required`) ?? null;
  const connectionsPerSecond = r.integer(o, key, path, 1, 1, MAX_RATE);
  const burst = r.integer(o, "burst", path, connectionsPerSecond, 1, MAX_RATE);
  return { connectionsPerSecond, burst };
}

function readCidrs(r: ConfigReader, o: Obj, key: string, path: JsonPath): Cidr[] {
  if (o[key] === undefined) return [];
  const out: Cidr[] = [];
  r.array(o[key], [...path, key])?.forEach((c, i) => {
    const cidr = typeof c === "string" ? parseCidr(c) : null;
    if (!cidr) r.fail([...path, key, i], `not an address range: ${JSON.stringify(c)} (expected e.g. "10.0.0.0/8" or "2001:db8::/32")`);
    else out.push(cidr);
  });
  return out;
}
