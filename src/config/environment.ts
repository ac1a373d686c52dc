/**
 * The environment layer: the reference PHP proxy's variables. Those that describe listeners
 * (ports, backend endpoints) build a config when no file is given; those that set one global key
 * (workers, relay, resolver, SSRF opt-out) override a file too (flags > environment > file).
 * @module
 */
import type { Layer } from "./layer.ts";
import { setKey } from "./layer.ts";

type Env = Record<string, string | undefined>;

/** Per mode: the variables naming its ports and backend, and the reference proxy's defaults. */
const MODES = {
  tcp: { backend: "TCP_BACKEND_ENDPOINT", defaultBackend: "127.0.0.1:5432", skip: "TCP_SKIP_VALIDATION", workers: "TCP_WORKERS",
         ports: [["postgres", "TCP_POSTGRES_PORT", "5432"], ["mysql", "TCP_MYSQL_PORT", "3306"]] },
  http: { backend: "HTTP_BACKEND_ENDPOINT", defaultBackend: "127.0.0.1:5678", skip: "HTTP_SKIP_VALIDATION", workers: "HTTP_WORKERS",
          ports: [["http", "HTTP_PORT", "8080"]] },
  smtp: { backend: "SMTP_BACKEND_ENDPOINT", defaultBackend: "127.0.0.1:1025", skip: "SMTP_SKIP_VALIDATION", workers: null,
          ports: [["smtp", "SMTP_PORT", "25"]] },
} as const;

/**
 * `serve tcp|http|smtp` with no file, or a TCP_BACKEND_ENDPOINT/PROXY_RESOLVER with no mode: listeners
 * on the reference proxy's ports (all interfaces, as it does). Null when the environment says nothing.
 */
export function configFromEnvironment(mode: "tcp" | "http" | "smtp" | null, env: Env): Layer | null {
  const chosen = mode ?? (env.TCP_BACKEND_ENDPOINT || env.PROXY_RESOLVER ? "tcp" : null);
  if (!chosen) return null;
  const m = MODES[chosen];
  const layer: Layer = { source: "<environment>", value: {}, origins: new Map() };
  const backend = env[m.backend] || (env.PROXY_RESOLVER ? undefined : m.defaultBackend);
  // The reference proxy's TCP ports carry PostgreSQL and MySQL: plain TCP listeners, except the
  // PostgreSQL port with PROXY_TLS_ENABLED (a postgres listener, below) and the MySQL port with
  // PROXY_RESOLVER (a mysql listener, below).
  const protocol = chosen === "tcp" ? "tcp" : chosen;
  (layer.value as Record<string, unknown>).listeners = m.ports.map(([name, variable, port], i) => {
    layer.origins.set(JSON.stringify(["listeners", i, "listen"]), variable);
    layer.origins.set(JSON.stringify(["listeners", i, "routes"]), m.backend);
    const tls = name === "postgres" ? postgresTls(env, layer, i) : null;
    const mysql = name === "mysql" && mysqlRouting(env, layer, i);
    return {
      name, protocol: tls ? "postgres" : mysql ? "mysql" : protocol, listen: [`0.0.0.0:${env[variable] || port}`], ...tls,
      ...(backend ? { routes: [{ name: "backend", upstreams: [{ address: backend }], ...httpPool(chosen, env, layer, i) }] } : {}),
    };
  });
  return layer;
}

/**
 * PROXY_TLS_ENABLED and friends (the reference proxy's "PostgreSQL STARTTLS"): the PostgreSQL port
 * becomes a postgres listener that answers SSLRequest and terminates TLS with PROXY_TLS_CERT/KEY,
 * verifying clients against PROXY_TLS_CA when given. The MySQL port is not changed by these.
 */
function postgresTls(env: Env, layer: Layer, i: number): Record<string, unknown> | null {
  if (!env.PROXY_TLS_ENABLED || !TRUE.has(env.PROXY_TLS_ENABLED.toLowerCase())) return null;
  layer.origins.set(JSON.stringify(["listeners", i, "protocol"]), "PROXY_TLS_ENABLED");
  layer.origins.set(JSON.stringify(["listeners", i, "defaultCert"]), "PROXY_TLS_CERT/PROXY_TLS_KEY");
  const out: Record<string, unknown> = { defaultCert: { cert: env.PROXY_TLS_CERT || undefined, key: env.PROXY_TLS_KEY || undefined } };
  if (env.PROXY_TLS_CA) {
    const require = env.PROXY_TLS_REQUIRE_CLIENT_CERT;
    out.mtls = { ca: env.PROXY_TLS_CA, requireClientCert: require ? TRUE.has(require.toLowerCase()) : true };
    layer.origins.set(JSON.stringify(["listeners", i, "mtls"]), "PROXY_TLS_CA");
  }
  return out;
}

/**
 * TCP_MYSQL_PORT: a mysql listener (greeting, user and database read, then the client
 * authenticates to the chosen server) when something routes on those facts: PROXY_RESOLVER, whose
 * answer comes from ctx.user and ctx.database (TCP_BACKEND_ENDPOINT, if given, is the route when it
 * answers null). There is no variable for a routing rule; without a resolver the port is a plain TCP
 * relay to TCP_BACKEND_ENDPOINT, as in the reference proxy: nothing to decide, so nothing to read.
 */
function mysqlRouting(env: Env, layer: Layer, i: number): boolean {
  if (!env.PROXY_RESOLVER) return false;
  layer.origins.set(JSON.stringify(["listeners", i, "protocol"]), "PROXY_RESOLVER");
  return true;
}

/** HTTP_BACKEND_POOL_SIZE: the idle upstream connections kept (the route's pool.maxIdle). */
function httpPool(mode: string, env: Env, layer: Layer, i: number): Record<string, unknown> {
  const size = env.HTTP_BACKEND_POOL_SIZE;
  if (mode !== "http" || !size) return {};
  layer.origins.set(JSON.stringify(["listeners", i, "routes", 0, "pool", "maxIdle"]), "HTTP_BACKEND_POOL_SIZE");
  return { pool: { maxIdle: /^\d+$/.test(size) ? Number(size) : size } };
}

const TRUE = new Set(["1", "true", "yes", "on"]);

/** Variables that override one key whatever the config's origin. */
export function applyEnvironment(layer: Layer, env: Env): Layer {
  const workers = env.TCP_WORKERS ?? env.HTTP_WORKERS;
  if (workers) setKey(layer, ["workers"], /^\d+$/.test(workers) ? Number(workers) : workers, env.TCP_WORKERS ? "TCP_WORKERS" : "HTTP_WORKERS");
  if (env.TCP_SOCKMAP_ENABLED && TRUE.has(env.TCP_SOCKMAP_ENABLED.toLowerCase())) setKey(layer, ["relay"], "sockmap", "TCP_SOCKMAP_ENABLED");
  if (env.PROXY_RESOLVER) setKey(layer, ["resolver"], env.PROXY_RESOLVER, "PROXY_RESOLVER");
  const listeners = (layer.value as { listeners?: unknown }).listeners;
  if (Array.isArray(listeners)) listeners.forEach((l: Record<string, unknown>, i) => {
    if (typeof l !== "object" || l === null) return;
    const mode = l.protocol === "http" ? MODES.http : l.protocol === "smtp" ? MODES.smtp : MODES.tcp;
    const skip = env[mode.skip];
    if (skip !== undefined && skip !== "") {
      l.skipValidation = TRUE.has(skip.toLowerCase());
      layer.origins.set(JSON.stringify(["listeners", i, "skipValidation"]), mode.skip);
    }
  });
  return layer;
}
