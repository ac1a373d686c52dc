/**
 * What the resolver module is told about a connection (ResolveContext, SPEC.md), and the routing
 * cache's key for it: both derived from the connection's facts (src/protocol/facts.ts), so a fact the
 * resolver sees is always part of the key and one tenant's answer cannot serve another's.
 * @module
 */
import { RESOLVER_FACTS, resolverFacts, type ConnFacts } from "../protocol/facts.ts";
import type { ResolveContext } from "./resolver.ts";

export interface Addressed {
  readonly listener: string;
  readonly port: number;
  readonly clientIp: string;
  readonly clientPort: number;
  /** The client's first bytes, for protocols that read before routing; null for plain TCP. */
  readonly data: Uint8Array | null;
}

export function resolveContext(where: Addressed, facts: Readonly<ConnFacts>): ResolveContext {
  return {
    listener: where.listener, port: where.port, client: { ip: where.clientIp, port: where.clientPort }, data: where.data,
    ...resolverFacts(facts),
    connectionAttributes: facts.connectionAttributes === null ? null : Object.freeze(Object.fromEntries(facts.connectionAttributes)),
  };
}

/** The cache key of a context: where the client came from and every fact the resolver saw. */
export function cacheKey(ctx: ResolveContext): string {
  let key = `${ctx.listener}\0${ctx.port}\0${ctx.client.ip}`;
  for (const name of RESOLVER_FACTS) key += `\0${ctx[name] ?? ""}`;
  // Attributes last, as JSON (names and values may hold any character; null and {} differ).
  if (ctx.connectionAttributes !== null) key += `\0${JSON.stringify(ctx.connectionAttributes)}`;
  return key;
}
