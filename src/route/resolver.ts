/**
 * The Resolver interface of SPEC.md, and the loader for a user module (`--resolver FILE`,
 * PROXY_RESOLVER), which the compiled binary imports at run time (TypeScript or JavaScript).
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";
import type { ResolverFacts } from "../protocol/facts.ts";

/**
 * What the resolver is told about a connection: where it came from, its first bytes, and every fact
 * its protocol learned (src/protocol/facts.ts RESOLVER_FACTS; null where not known yet).
 */
export interface ResolveContext extends ResolverFacts {
  listener: string;
  port: number;
  client: { ip: string; port: number };
  /** First bytes of the connection, for protocols that read before routing; null for plain TCP. */
  data: Uint8Array | null;
  /** MySQL connection attributes (program_name, _client_name, …); null when none were sent or the protocol has none. */
  connectionAttributes: Readonly<Record<string, string>> | null;
}

/**
 * A resolver's answer: where to go, or null/undefined to fall back to the listener's route table.
 * `status` (with an optional `message`) refuses the connection. `cache: false` keeps this answer
 * out of the routing cache.
 */
export type ResolveResult =
  | { endpoint: string; cache?: boolean }
  | { status: number; message?: string }
  | null
  | undefined;

export interface ConnectionInfo {
  id: number;
  listener: string;
  route: string | null;
  client: { ip: string; port: number };
  upstream: string | null;
}

export interface DisconnectInfo extends ConnectionInfo {
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  reason: string;
}

export interface Resolver {
  resolve(ctx: ResolveContext): ResolveResult | Promise<ResolveResult>;
  onConnect?(info: ConnectionInfo): void;
  onDisconnect?(info: DisconnectInfo): void;
}

/** Import a resolver module; its default export (or the module itself) must have resolve(). */
export async function loadResolverModule(file: string, generation = 0): Promise<Resolver> {
  const path = resolvePath(file);
  let mod: Record<string, unknown>;
  try {
    const url = pathToFileURL(path).href + (generation > 0 ? `?generation=${generation}` : "");
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`cannot load resolver module ${path}: ${(e as Error).message}`);
  }
  const candidate = (mod.default ?? mod) as Partial<Resolver>;
  if (typeof candidate?.resolve !== "function") throw new Error(`resolver module ${path} has no resolve() function (export default { resolve(ctx) {…} })`);
  return candidate as Resolver;
}

/** Thrown when the resolver does not answer in time. */
export class ResolveTimeout extends Error {}

/** Ask the resolver, bounded by `ms`; the one timer is cleared as soon as it answers. */
export function resolveWithTimeout(resolver: Resolver, ctx: ResolveContext, ms: number): Promise<ResolveResult> {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new ResolveTimeout(`resolver did not answer within ${ms} ms`)), ms);
    Promise.resolve()
      .then(() => resolver.resolve(ctx))
      .then((r) => { clearTimeout(timer); ok(r); }, (e) => { clearTimeout(timer); fail(e); });
  });
}
