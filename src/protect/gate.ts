/**
 * The gate stage (DESIGN.md): checks that need no bytes, in this order: blocklist, allowlist,
 * listener maxConnections, per-IP concurrency, per-IP rate; after routing, the route's rate. Counts
 * and buckets live in a {@link LimitTable}: shared memory across workers when the native library is
 * there, this process otherwise (see README "Global limits").
 * @module
 */
import type { ListenerConfig, RouteConfig } from "../config/types.ts";
import { CidrSet, parseIp } from "../net/ip.ts";
import { LocalLimitTable, type LimitKey, type LimitTable } from "./limit-table.ts";

/** Why the gate refused a connection: the names of GET /blocked and the blocked counter. */
export type BlockReason = "cidrBlocklist" | "cidrAllowlist" | "maxConnections" | "concurrencyLimited" | "rateLimited" | "routeRateLimited";

/** The close reason (access log, closes counter) for each block reason. */
export const BLOCK_CLOSE_REASON: Record<BlockReason, string> = {
  cidrBlocklist: "cidr_blocklist",
  cidrAllowlist: "cidr_allowlist",
  maxConnections: "max_connections",
  concurrencyLimited: "concurrency_limited",
  rateLimited: "rate_limited",
  routeRateLimited: "route_rate_limited",
};

let table: LimitTable = new LocalLimitTable(() => performance.now());

/** The process's limits table (set once at start: shared when there are workers and the library). */
export function useLimitTable(t: LimitTable): void {
  table = t;
}

export function limitTableScope(): LimitTable["scope"] {
  return table.scope;
}

/** Two independent 32-bit hashes of `text`. */
function keyOf(text: string): LimitKey {
  return { h1: Bun.hash.murmur32v3(text, 0x5f3759df), h2: Bun.hash.murmur32v3(text, 0x2545f491) };
}

/** What an admitted connection holds and gives back when it ends. */
export interface GateTicket {
  readonly listener: LimitKey | null;
  readonly ip: LimitKey | null;
}

/** A listener's gate, built with its runtime (so a reload brings new lists at once). */
export class ListenerGate {
  readonly #blocklist: CidrSet | null;
  readonly #allowlist: CidrSet | null;
  readonly #listenerKey: LimitKey;
  readonly #maxConnections: number;
  readonly #name: string;
  readonly #perIp: boolean;
  /** Whether there is anything to check at all (the common case has nothing: one branch per accept). */
  readonly enabled: boolean;

  constructor(readonly config: ListenerConfig) {
    const g = config.gate;
    this.#blocklist = g.blocklist.length ? new CidrSet(g.blocklist) : null;
    this.#allowlist = g.allowlist.length ? new CidrSet(g.allowlist) : null;
    this.#maxConnections = config.maxConnections;
    this.#name = config.name;
    this.#listenerKey = keyOf(`listener\0${config.name}`);
    this.#perIp = g.maxConcurrentPerIp > 0 || g.rateLimit !== null;
    this.enabled = this.#blocklist !== null || this.#allowlist !== null || this.#maxConnections > 0 || this.#perIp;
  }

  /** Admit (a ticket to give back at the end) or refuse (why) a client at accept. */
  admit(clientIp: string): GateTicket | BlockReason {
    if (this.#blocklist || this.#allowlist) {
      const ip = parseIp(clientIp);
      if (ip && this.#blocklist?.contains(ip)) return "cidrBlocklist";
      if (this.#allowlist && !(ip && this.#allowlist.contains(ip))) return "cidrAllowlist";
    }
    let listener: LimitKey | null = null;
    if (this.#maxConnections > 0) {
      if (table.take(this.#listenerKey, 0, 0, this.#maxConnections, true) === "concurrencyLimited") return "maxConnections";
      listener = this.#listenerKey;
    }
    if (!this.#perIp) return { listener, ip: null };
    const g = this.config.gate;
    const ip = keyOf(`ip\0${this.#name}\0${clientIp}`);
    // Counted as open only when a concurrency limit needs it: an uncounted entry can be reused.
    const counted = g.maxConcurrentPerIp > 0;
    const verdict = table.take(ip, g.rateLimit?.connectionsPerSecond ?? 0, g.rateLimit?.burst ?? 0, g.maxConcurrentPerIp, counted);
    if (verdict === "rateLimited" || verdict === "concurrencyLimited") {
      if (listener) table.release(listener);
      return verdict;
    }
    return { listener, ip: counted ? ip : null };
  }

  /** Open connections on this listener, all workers together (for tests and GET /blocked). */
  open(): number {
    return table.open(this.#listenerKey);
  }
}

/** The connection has ended: give back what it held. */
export function release(ticket: GateTicket): void {
  if (ticket.listener) table.release(ticket.listener);
  if (ticket.ip) table.release(ticket.ip);
}

/** A route's rate (maxConnectionsPerSecond/burst): "admitted" or "routeRateLimited". */
export class RouteGate {
  readonly #key: LimitKey;

  constructor(listener: string, readonly config: RouteConfig) {
    this.#key = keyOf(`route\0${listener}\0${config.name}`);
  }

  admit(): "admitted" | "routeRateLimited" {
    const r = this.config.rateLimit;
    if (!r) return "admitted";
    return table.take(this.#key, r.connectionsPerSecond, r.burst, 0, false) === "rateLimited" ? "routeRateLimited" : "admitted";
  }
}
