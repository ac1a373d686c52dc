/**
 * Route-table semantics, written once.
 *
 * - A route matches when every field of its `match` matches (AND); a list field matches when any
 *   entry does (OR); a field left out matches anything.
 * - `sni` is tried by specificity, not by position: routes naming the exact server name first, then
 *   routes whose `*.suffix` covers it (one label: `*.example.com` matches `a.example.com`, not
 *   `a.b.example.com` nor `example.com`), then routes without an sni (or with `""`). Names compare
 *   case-insensitively and without a trailing dot (the sniffer and the schema normalise both sides).
 * - Within one of those tiers, routes are tried in the order written.
 * - `alpn` matches when the client offered any of the listed protocols; `database`/`user` compare
 *   exactly (PostgreSQL names are case-sensitive once quoted).
 * - A route without `match` is the default, used when no other route matches, wherever it stands.
 * Pure: facts in, route out.
 * @module
 */
import { CidrSet, parseIp, type IpAddress } from "../net/ip.ts";
import type { RouteConfig } from "../config/types.ts";

/** What is known about a connection when it is routed; protocol facts are absent where not sniffed. */
export interface RouteFacts {
  /** The client's address as text; parsed only if a route matches on it. */
  readonly clientIp: string;
  /** Normalised server name from the ClientHello; null = the hello had none. */
  readonly sni?: string | null;
  /** ALPN protocols the client offered. */
  readonly alpn?: readonly string[];
  readonly database?: string | null;
  readonly user?: string | null;
}

interface Matcher<R> {
  readonly route: R;
  readonly clients: CidrSet | null;
  readonly alpn: ReadonlySet<string> | null;
  readonly database: ReadonlySet<string> | null;
  readonly user: ReadonlySet<string> | null;
}

export class RouteTable<R extends { readonly config: RouteConfig }> {
  /** Exact server name → routes naming it, in order. */
  readonly #exact = new Map<string, Matcher<R>[]>();
  /** Wildcard suffix (".example.com") → routes, in order. */
  readonly #wildcard = new Map<string, Matcher<R>[]>();
  /** Routes without an sni condition, in order. */
  readonly #anyName: Matcher<R>[] = [];
  readonly #fallback: R | null = null;

  constructor(routes: readonly R[]) {
    for (const route of routes) {
      const m = route.config.match;
      if (m === null) {
        this.#fallback = route;
        continue;
      }
      const matcher: Matcher<R> = {
        route,
        clients: m.clientCidr.length ? new CidrSet(m.clientCidr) : null,
        alpn: m.alpn.length ? new Set(m.alpn) : null,
        database: m.database.length ? new Set(m.database) : null,
        user: m.user.length ? new Set(m.user) : null,
      };
      if (m.sni.length === 0 || m.sni.includes("")) {
        this.#anyName.push(matcher);
        continue;
      }
      for (const name of m.sni) {
        const [map, key] = name.startsWith("*.") ? [this.#wildcard, name.slice(1)] : [this.#exact, name];
        const list = map.get(key) ?? [];
        if (!list.includes(matcher)) list.push(matcher);
        map.set(key, list);
      }
    }
  }

  get isEmpty(): boolean {
    return this.#exact.size === 0 && this.#wildcard.size === 0 && this.#anyName.length === 0 && this.#fallback === null;
  }

  /** The route for these facts, or null when none matches and there is no default route. */
  match(facts: RouteFacts): R | null {
    const ip = PARSED_IP; // the client address, parsed on first need: most tables never look at it
    ip.v = undefined;
    const sni = facts.sni;
    if (sni) {
      const exact = this.#exact.get(sni);
      const hit = exact && first(exact, facts, ip);
      if (hit) return hit;
      const dot = sni.indexOf(".");
      const wild = dot > 0 ? this.#wildcard.get(sni.slice(dot)) : undefined;
      const wildHit = wild && first(wild, facts, ip);
      if (wildHit) return wildHit;
    }
    return first(this.#anyName, facts, ip) ?? this.#fallback;
  }
}

/** Scratch for match(), which is synchronous: no allocation per connection. */
const PARSED_IP: { v?: IpAddress | null } = {};

function first<R>(list: readonly Matcher<R>[], facts: RouteFacts, ip: { v?: IpAddress | null }): R | null {
  for (const m of list) {
    if (m.clients) {
      if (ip.v === undefined) ip.v = parseIp(facts.clientIp);
      if (!ip.v || !m.clients.contains(ip.v)) continue;
    }
    if (m.alpn && !facts.alpn?.some((p) => m.alpn!.has(p))) continue;
    if (m.database && !(facts.database != null && m.database.has(facts.database))) continue;
    if (m.user && !(facts.user != null && m.user.has(facts.user))) continue;
    return m.route;
  }
  return null;
}
