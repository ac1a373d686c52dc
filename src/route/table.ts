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
 *   exactly (PostgreSQL names are case-sensitive once quoted); so does `method` (HTTP methods are
 *   case-sensitive, RFC 9110 §9.1).
 * - `ehlo`/`rcptDomain` (SMTP) are domain patterns: exact, or `*.suffix` for exactly one more label
 *   (as sni's wildcard), compared in lower case (the SMTP module lowers the facts, the schema the patterns).
 * - `connectionAttributes` (MySQL) names attributes, each with the values it accepts (exact): the
 *   route matches when every named attribute was sent with one of them.
 * - `host` and `path` (HTTP) are patterns (src/route/host-pattern.ts); the host fact is normalised by
 *   the protocol (lower case, no port, no trailing dot), the path is matched without its query.
 *   HTTP asks the table once per request, not once per connection.
 * - A route without `match` is the default, used when no other route matches, wherever it stands.
 * Pure: facts (src/protocol/facts.ts) in, route out.
 * @module
 */
import { CidrSet, parseIp, type IpAddress } from "../net/ip.ts";
import type { RouteConfig } from "../config/types.ts";
import { DOMAIN_MATCHED_FACTS, MATCHED_FACTS, type ConnFacts } from "../protocol/facts.ts";
import { compileHostPatterns, compilePathPatterns, pathOnly, type ValueTest } from "./host-pattern.ts";

type MatchedFact = (typeof MATCHED_FACTS)[number];

/** One condition of a route: the fact it tests and the values it accepts. */
interface Condition {
  readonly fact: MatchedFact;
  readonly accepts: ValueTest;
}

interface Matcher<R> {
  readonly route: R;
  readonly clients: CidrSet | null;
  /** The route's conditions on facts (src/protocol/facts.ts MATCHED_FACTS), only those it names. */
  readonly conditions: readonly Condition[];
  /** match.connectionAttributes: attribute name → accepted values; null when the route names none. */
  readonly attributes: readonly (readonly [string, ReadonlySet<string>])[] | null;
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
        conditions: MATCHED_FACTS.filter((fact) => (m[fact]?.length ?? 0) > 0).map((fact) => condition(fact, m[fact]!)),
        attributes: attributeConditions(m.connectionAttributes),
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

  /** The route for a client at `clientIp` with these facts, or null when none matches and there is no default route. */
  match(clientIp: string, facts: Readonly<ConnFacts>): R | null {
    const ip = PARSED_IP; // the client address, parsed on first need: most tables never look at it
    ip.v = undefined;
    const sni = facts.sni;
    if (sni) {
      const exact = this.#exact.get(sni);
      const hit = exact && first(exact, clientIp, facts, ip);
      if (hit) return hit;
      const dot = sni.indexOf(".");
      const wild = dot > 0 ? this.#wildcard.get(sni.slice(dot)) : undefined;
      const wildHit = wild && first(wild, clientIp, facts, ip);
      if (wildHit) return wildHit;
    }
    return first(this.#anyName, clientIp, facts, ip) ?? this.#fallback;
  }
}

/**
 * How a route's list for `fact` becomes a test: host and path patterns (HTTP), domain patterns (SMTP),
 * else the exact values.
 */
function condition(fact: MatchedFact, values: readonly string[]): Condition {
  if (fact === "host") return { fact, accepts: compileHostPatterns(values) };
  if (fact === "path") {
    const pathMatches = compilePathPatterns(values);
    return { fact, accepts: (path) => pathMatches(pathOnly(path)) };
  }
  if (DOMAIN_MATCHED_FACTS.has(fact)) {
    const exact = new Set(values.filter((v) => !v.startsWith("*.")));
    const wild = new Set(values.filter((v) => v.startsWith("*.")).map((v) => v.slice(1)));
    return { fact, accepts: wild.size === 0 ? (v) => exact.has(v) : (v) => exact.has(v) || wildcardHolds(wild, v) };
  }
  const accepted = new Set(values);
  return { fact, accepts: (v) => accepted.has(v) };
}

/** Scratch for match(), which is synchronous: no allocation per connection. */
const PARSED_IP: { v?: IpAddress | null } = {};

function first<R>(list: readonly Matcher<R>[], clientIp: string, facts: Readonly<ConnFacts>, ip: { v?: IpAddress | null }): R | null {
  for (const m of list) {
    if (m.clients) {
      if (ip.v === undefined) ip.v = parseIp(clientIp);
      if (!ip.v || !m.clients.contains(ip.v)) continue;
    }
    if (allHold(m.conditions, facts) && (m.attributes === null || attributesHold(m.attributes, facts.connectionAttributes))) return m.route;
  }
  return null;
}

function allHold(conditions: readonly Condition[], facts: Readonly<ConnFacts>): boolean {
  for (const c of conditions) if (!holds(c, facts)) return false;
  return true;
}

/** A list fact holds when any of its values is accepted; a single one when it is. */
function holds(c: Condition, facts: Readonly<ConnFacts>): boolean {
  const v = facts[c.fact];
  if (typeof v === "string") return c.accepts(v);
  if (v === null) return false;
  for (const one of v) if (c.accepts(one)) return true;
  return false;
}

function attributeConditions(wanted: Readonly<Record<string, readonly string[]>> | undefined): Matcher<unknown>["attributes"] {
  const entries = Object.entries(wanted ?? {});
  return entries.length === 0 ? null : entries.map(([name, values]) => [name, new Set(values)] as const);
}

/** Every named attribute was sent, with an accepted value. */
function attributesHold(wanted: NonNullable<Matcher<unknown>["attributes"]>, sent: ReadonlyMap<string, string> | null): boolean {
  if (sent === null) return false;
  for (const [name, accepted] of wanted) {
    const v = sent.get(name);
    if (v === undefined || !accepted.has(v)) return false;
  }
  return true;
}

/** `*.b.example` (kept as ".b.example") holds for "a.b.example": exactly one label before the suffix. */
function wildcardHolds(suffixes: ReadonlySet<string>, domain: string): boolean {
  const dot = domain.indexOf(".");
  return dot > 0 && suffixes.has(domain.slice(dot));
}
