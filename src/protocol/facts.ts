/**
 * What a connection's protocol has learned about it: the one definition that route matching
 * (src/route/table.ts), the resolver module's context and its cache key (src/route/resolve-context.ts)
 * and the access log (src/proxy/finish.ts) are derived from. A fact added here reaches all of them:
 * the resolver context and its key iterate {@link RESOLVER_FACTS}, the log {@link logFields}, and a
 * route matches on every name in {@link MATCHED_FACTS} that its `match` lists. Listing a fact in one
 * of those and not in the class is a type error.
 *
 * Every field is initialised, so every instance has one shape (the engine keeps one hidden class and
 * the code that reads facts stays monomorphic). Facts a protocol has not learned are null; a list is
 * empty. Listeners whose protocol learns nothing before routing (tcp) share {@link NO_FACTS} and
 * allocate nothing.
 * @module
 */

export type TlsHandling = "terminate" | "passthrough" | "none";

const NO_ALPN: readonly string[] = Object.freeze([]);

export class ConnFacts {
  /** Server name from the ClientHello, normalised (lower case, no trailing dot); null = none sent. */
  sni: string | null = null;
  /** ALPN protocols the client offered, in its order. */
  alpn: readonly string[] = NO_ALPN;
  /** The protocol selected when the proxy terminated TLS; null otherwise. */
  alpnNegotiated: string | null = null;
  ja3: string | null = null;
  ja4: string | null = null;
  /** How TLS was handled: decrypted here, passed through, or none seen. */
  tls: TlsHandling = "none";
  /** Subject of the client certificate verified by mTLS, e.g. "CN=alice,O=Example". */
  clientCert: string | null = null;
  /** PostgreSQL (StartupMessage) and MySQL (HandshakeResponse). */
  database: string | null = null;
  user: string | null = null;
  /** HTTP, per request. */
  host: string | null = null;
  path: string | null = null;
  method: string | null = null;
  /** SMTP: the EHLO/HELO domain, MAIL FROM's address, the first RCPT TO's domain. */
  ehlo: string | null = null;
  mailFrom: string | null = null;
  rcptDomain: string | null = null;
  /** SMTP: recipients the backend accepted (2xx to RCPT), over the whole connection; null on other protocols. */
  rcpt: number | null = null;
  /**
   * MySQL: the connection attributes of the HandshakeResponse41 (program_name, _client_name, …);
   * null when the client sent none. A map, so it is not in the string lists below: route
   * `match.connectionAttributes` tests it (src/route/table.ts), the resolver gets it as
   * ctx.connectionAttributes and in its cache key (src/route/resolve-context.ts); not logged.
   */
  connectionAttributes: ReadonlyMap<string, string> | null = null;
  /** The listener whose route ended TLS and chained the connection into this one (src/proxy/chain.ts); null = accepted here. */
  chainedFrom: string | null = null;
}

/** The facts of connections whose protocol learns none (tcp). Never written to. */
export const NO_FACTS: Readonly<ConnFacts> = new ConnFacts();

/** A fact's name. */
export type FactName = keyof ConnFacts;

/**
 * Facts a route's `match` may name besides `sni` and `clientCidr` (which the route table indexes
 * itself): a route lists accepted values; a list fact (alpn) matches when any offered value is
 * accepted, any other when its value is. Each is a key of RouteMatch with the same name.
 */
export const MATCHED_FACTS = ["alpn", "database", "user", "ehlo", "rcptDomain", "host", "path", "method"] as const satisfies readonly FactName[];

/** Matched facts whose accepted values are domain patterns ("b.example", "*.b.example"): src/route/table.ts. */
export const DOMAIN_MATCHED_FACTS: ReadonlySet<FactName> = new Set<FactName>(["ehlo", "rcptDomain"]);

/**
 * The facts the resolver module is told, in SPEC.md's names (ctx.sni, ctx.alpn, …). They are also,
 * in this order, the resolver cache's key: a fact that reaches the resolver is always in its key, so
 * one tenant's answer cannot serve another's. `alpn` is given as the first protocol offered.
 */
export const RESOLVER_FACTS = [
  "sni", "alpn", "ja3", "ja4", "clientCert", "host", "path", "method", "database", "user", "ehlo", "mailFrom", "rcptDomain",
] as const satisfies readonly FactName[];

export type ResolverFacts = { [K in (typeof RESOLVER_FACTS)[number]]: string | null };

/** The resolver's view of `facts` (SPEC.md's ctx fields). */
export function resolverFacts(facts: Readonly<ConnFacts>): ResolverFacts {
  const out = {} as Record<string, string | null>;
  for (const name of RESOLVER_FACTS) {
    const v = facts[name];
    out[name] = Array.isArray(v) ? ((v as readonly string[])[0] ?? null) : (v as string | null);
  }
  return out as ResolverFacts;
}

/**
 * Access-log fields (SPEC.md "Access log"): the TLS ones always (null when not known), every other
 * fact only when the protocol learned it, so a tcp or tls record does not carry empty PostgreSQL,
 * HTTP and SMTP fields. `alpn` is the negotiated protocol; `alpnOffered` what the hello offered.
 */
export function logFields(facts: Readonly<ConnFacts>): LoggedFacts {
  if (facts === NO_FACTS) return NO_LOGGED_FACTS; // tcp: one constant, nothing made per connection
  const out: LoggedFacts = {
    sni: facts.sni, alpn: facts.alpnNegotiated, alpnOffered: facts.alpn, ja3: facts.ja3, ja4: facts.ja4, tls: facts.tls,
  };
  for (const name of LOGGED_WHEN_KNOWN) {
    const v = facts[name];
    if (v !== null) (out as Record<string, unknown>)[name] = v;
  }
  return out;
}

const LOGGED_WHEN_KNOWN = [
  "clientCert", "database", "user", "host", "path", "method", "ehlo", "mailFrom", "rcptDomain", "rcpt", "chainedFrom",
] as const satisfies readonly FactName[];

/** The access log's fields from facts (src/log/access-log.ts AccessRecord has them). */
export type LoggedFacts = {
  sni: string | null;
  /** Negotiated when the proxy terminated TLS; null otherwise (a passthrough's answer is not read). */
  alpn: string | null;
  /** What the client's hello offered. */
  alpnOffered: readonly string[];
  ja3: string | null;
  ja4: string | null;
  tls: TlsHandling;
} & { [K in (typeof LOGGED_WHEN_KNOWN)[number]]?: NonNullable<ConnFacts[K]> };

const NO_LOGGED_FACTS: LoggedFacts = Object.freeze({ sni: null, alpn: null, alpnOffered: NO_ALPN, ja3: null, ja4: null, tls: "none" });
