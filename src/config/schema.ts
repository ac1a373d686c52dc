/**
 * The configuration schema: turns a parsed JSONC value into a {@link Config} with defaults filled in,
 * or a list of issues located by path. Keys follow ../shared/SPEC.md. Keys of features this version
 * does not have yet are accepted by the grammar but reported as "not built yet", so a file never
 * silently loses a setting the operator relies on (a blocklist that is ignored is worse than an error).
 * @module
 */
import { formatSocketAddress, parseSocketAddress, type SocketAddress } from "../net/address.ts";
import { formatIp, isLoopbackHost, parseCidr, parseIp, type Cidr } from "../net/ip.ts";
import type { JsonPath } from "./jsonc.ts";
import { ConfigReader, type ConfigIssue, type Obj } from "./reader.ts";
import { PROTECTION_KEYS, readGateConfig, readRouteRate } from "../protect/config.ts";
import { MYSQL_MATCH_KEYS, readMysqlMatch } from "./mysql-schema.ts";
import { HTTP_LISTENER_KEYS, HTTP_MATCH_KEYS, HTTP_ROUTE_KEYS, httpActionCount, readHttpListener, readHttpMatch, readHttpRoute, readRespondHeaders } from "./http-schema.ts";
import { readSmtpListener, readSmtpMatch, readSmtpRoute, SMTP_HANDSHAKE_TIMEOUT_MS, SMTP_IDLE_TIMEOUT_MS } from "./smtp-schema.ts";
import { checkTlsCertificates, readProtocolMatch, readTlsListener, readTlsRoute } from "./tls-schema.ts";
import {
  BALANCE_POLICIES, LOG_LEVELS, PROTOCOLS, RELAY_ENGINES,
  type Config, type ListenerConfig, type RespondConfig, type RouteConfig, type RouteMatch, type UpstreamConfig,
} from "./types.ts";

const TOP_KEYS = ["workers", "relay", "resolver", "admin", "log", "routeCache", "drainTimeoutMs", "listeners"];
const LISTENER_KEYS = [
  "name", "listen", "protocol", "reusePort", "defaultCert", "certDir", "mtls", "maxConnections", "idleTimeoutMs",
  "handshakeTimeoutMs", "connectTimeoutMs", "resolveTimeoutMs", "skipValidation", "protection", "routes", "smtp",
  "acceptProxyProtocol", ...HTTP_LISTENER_KEYS,
];
const ROUTE_KEYS = [
  "name", "match", "upstreams", "balance", "respond", "ipAffinity", "terminateTls", "cert", "upstreamTls",
  "proxyProtocol", "maxConnectionsPerSecond", "burst", "suspended", "suspendTimeoutMs", "mtls", "xclient", ...HTTP_ROUTE_KEYS,
];
const MATCH_KEYS = ["sni", "database", "user", "ehlo", "rcptDomain", "alpn", "clientCidr", ...HTTP_MATCH_KEYS, ...MYSQL_MATCH_KEYS];
/** Match keys whose facts only an smtp listener learns. */
const SMTP_MATCH_KEYS = ["ehlo", "rcptDomain"];
const UNBUILT_ROUTE_KEYS = ["ipAffinity", "suspendTimeoutMs"];
const DAY_MS = 86_400_000;

export const DEFAULTS = {
  idleTimeoutMs: 60_000,
  connectTimeoutMs: 5_000,
  resolveTimeoutMs: 5_000,
  routeCacheTtlMs: 60_000,
  routeCacheMaxEntries: 10_000,
  drainTimeoutMs: 30_000,
  handshakeTimeoutMs: 10_000,
} as const;

/** Validate a parsed config. `env` expands `${NAME}` in secrets (admin.token). */
export function readConfig(value: unknown, source: string, env: Record<string, string | undefined>):
  { config: Config; issues: readonly ConfigIssue[] } | { config: null; issues: readonly ConfigIssue[] } {
  const r = new ConfigReader();
  const top = r.object(value, [], TOP_KEYS) ?? {};

  const workers = readWorkers(r, top);
  const relay = r.oneOf(top, "relay", [], RELAY_ENGINES, "auto");
  const resolver = r.string(top, "resolver", []) ?? null;
  const admin = readAdmin(r, top.admin, env);
  const log = readLog(r, top.log);
  const cache = top.routeCache === undefined ? {} : (r.object(top.routeCache, ["routeCache"], ["ttlMs", "maxEntries"]) ?? {});
  const routeCache = {
    ttlMs: r.integer(cache, "ttlMs", ["routeCache"], DEFAULTS.routeCacheTtlMs, 0, DAY_MS),
    maxEntries: r.integer(cache, "maxEntries", ["routeCache"], DEFAULTS.routeCacheMaxEntries, 0, 10_000_000),
  };

  const listeners: ListenerConfig[] = [];
  const names = new Map<string, JsonPath>();
  const addresses: SeenAddresses = { exact: new Map(), byPort: new Map(), unaddressed: new Map() };
  const list = top.listeners === undefined ? r.fail(["listeners"], "listeners is required") : r.array(top.listeners, ["listeners"]);
  if (list?.length === 0) r.fail(["listeners"], "listeners must name at least one listener");
  list?.forEach((item, i) => {
    const l = readListener(r, item, ["listeners", i], i, resolver !== null, addresses);
    if (!l) return;
    listeners.push(l);
    if (names.has(l.name)) r.fail(["listeners", i, "name"], `duplicate listener name "${l.name}"`);
    names.set(l.name, ["listeners", i]);
  });

  checkChains(r, listeners, names, addresses.unaddressed);
  const drainTimeoutMs = r.integer(top, "drainTimeoutMs", [], DEFAULTS.drainTimeoutMs, 0, DAY_MS);
  if (r.issues.length > 0) return { config: null, issues: r.issues };
  return { config: { source, workers, relay, resolver, admin, log, routeCache, drainTimeoutMs, listeners }, issues: [] };
}

/**
 * Listener chaining (src/proxy/chain.ts): a route that continues into another listener ends TLS on a
 * tls listener (what continues is the plaintext), and names a listener that exists, is not itself
 * and does not speak TLS again. A listener with `"listen": []` is reachable only that way, so some
 * route must chain into it.
 */
function checkChains(r: ConfigReader, listeners: readonly ListenerConfig[], paths: ReadonlyMap<string, JsonPath>,
  unaddressed: ReadonlyMap<string, JsonPath>): void {
  const byName = new Map(listeners.map((l) => [l.name, l]));
  const chainedInto = new Set<string>();
  for (const l of listeners) l.routes.forEach((route, i) => {
    if (route.chain === undefined) return;
    const at = [...paths.get(l.name)!, "routes", i, "upstreams", 0, "listener"];
    const target = byName.get(route.chain);
    chainedInto.add(route.chain);
    if (l.protocol !== "tls" || !route.terminateTls) r.fail(at, `a route continues into another listener only from a "tls" listener with "terminateTls": true (the plaintext is what continues)`);
    else if (!target) r.fail(at, `no listener named "${route.chain}" (known: ${[...byName.keys()].join(", ")})`);
    else if (target === l) r.fail(at, "a route cannot continue into its own listener");
    else if (target.protocol === "tls") r.fail(at, `listener "${route.chain}" speaks tls: TLS was just ended, continue into a listener of the protocol inside it`);
  });
  for (const [name, at] of unaddressed) {
    if (!chainedInto.has(name)) {
      r.fail(at, `listen must hold at least one address (only a listener that a route continues into, { "listener": "${name}" }, may have none)`);
    }
  }
}

function readWorkers(r: ConfigReader, top: Obj): number | "auto" {
  const v = top.workers;
  if (v === undefined) return 1;
  if (v === "auto") return "auto";
  return r.integer(top, "workers", [], 1, 1, 1024);
}

function readAdmin(r: ConfigReader, value: unknown, env: Record<string, string | undefined>): Config["admin"] {
  if (value === undefined) return null;
  const o = r.object(value, ["admin"], ["listen", "token"]);
  if (!o) return null;
  const listen = readAddress(r, o.listen ?? "127.0.0.1:9901", ["admin", "listen"], true);
  const raw = r.string(o, "token", ["admin"]);
  const token = raw === undefined ? null : raw.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, n: string) => env[n] ?? "");
  if (raw !== undefined && token === "") r.fail(["admin", "token"], "admin.token is empty (is its ${VARIABLE} set?)");
  // The one rule, for `validate` and `serve` alike, checked before anything is bound.
  if (listen?.kind === "inet" && !isLoopbackHost(listen.host) && raw === undefined) {
    r.fail(["admin", "listen"], `admin API on ${formatSocketAddress(listen)} is not loopback: set admin.token (e.g. "token": "\${ADMIN_TOKEN}")`);
  }
  return listen ? { listen, token: token || null } : null;
}

function readLog(r: ConfigReader, value: unknown): Config["log"] {
  const o = value === undefined ? {} : (r.object(value, ["log"], ["level", "format", "access"]) ?? {});
  return {
    level: r.oneOf(o, "level", ["log"], LOG_LEVELS, "info"),
    format: o.format === undefined ? null : r.oneOf(o, "format", ["log"], ["text", "json"] as const, "text"),
    access: r.string(o, "access", ["log"]) ?? null,
  };
}

function readListener(r: ConfigReader, value: unknown, path: JsonPath, index: number, hasResolver: boolean,
  addresses: SeenAddresses): ListenerConfig | undefined {
  const o = r.object(value, path, LISTENER_KEYS);
  if (!o) return undefined;
  const name = r.string(o, "name", path, `listener${index}`);
  const protocol = r.oneOf(o, "protocol", path, PROTOCOLS, "tcp");
  const protection = readProtection(r, o.protection, [...path, "protection"]);

  const listenValue = typeof o.listen === "string" ? [o.listen] : o.listen;
  const listen: SocketAddress[] = [];
  if (listenValue === undefined) r.fail([...path, "listen"], "listen is required (host:port, [v6]:port or unix:/path)");
  else r.array(listenValue, [...path, "listen"])?.forEach((a, i) => {
    const at = typeof o.listen === "string" ? [...path, "listen"] : [...path, "listen", i];
    const parsed = readAddress(r, a, at, true);
    if (!parsed) return;
    listen.push(parsed);
    const key = addressKey(parsed);
    const other = key === null ? undefined : addresses.exact.get(key);
    if (other !== undefined) r.fail(at, `duplicate listen address ${key} (already used by listener "${other}")`);
    else if (key !== null) {
      addresses.exact.set(key, name);
      const clash = overlapping(parsed, key, name, addresses);
      if (clash) r.fail(at, clash);
    }
  });
  // Allowed only for a listener that a route chains into: checked once all are read (checkChains).
  if (Array.isArray(listenValue) && listenValue.length === 0) addresses.unaddressed.set(name, [...path, "listen"]);

  const routes: RouteConfig[] = [];
  const routeNames = new Set<string>();
  let defaultRoutes = 0;
  // Without routes, every connection is the resolver module's to place.
  const routeList = o.routes === undefined
    ? (hasResolver ? [] : r.fail(path, "routes is required (or set a resolver module)"))
    : r.array(o.routes, [...path, "routes"]);
  if (routeList?.length === 0 && !hasResolver) r.fail([...path, "routes"], "routes must hold at least one route");
  routeList?.forEach((item, i) => {
    const route = readRoute(r, item, [...path, "routes", i], i, protocol);
    if (!route) return;
    routes.push(route);
    if (routeNames.has(route.name)) r.fail([...path, "routes", i, "name"], `duplicate route name "${route.name}"`);
    routeNames.add(route.name);
    // Only a route written without `match` is a default; a malformed match is reported on its own.
    if (typeof item === "object" && item !== null && !("match" in item) && ++defaultRoutes === 2) {
      r.fail([...path, "routes", i], "more than one route without match (only one default route per listener)");
    }
  });

  checkTlsCertificates(r, o, path, routes, protocol);
  return {
    name,
    listen,
    protocol,
    reusePort: r.boolean(o, "reusePort", path, false),
    maxConnections: r.integer(o, "maxConnections", path, 0, 0, 10_000_000),
    idleTimeoutMs: r.integer(o, "idleTimeoutMs", path, protocol === "smtp" ? SMTP_IDLE_TIMEOUT_MS : DEFAULTS.idleTimeoutMs, 0, DAY_MS),
    connectTimeoutMs: r.integer(o, "connectTimeoutMs", path, DEFAULTS.connectTimeoutMs, 1, DAY_MS),
    resolveTimeoutMs: r.integer(o, "resolveTimeoutMs", path, DEFAULTS.resolveTimeoutMs, 1, DAY_MS),
    skipValidation: r.boolean(o, "skipValidation", path, false),
    // smtp: the whole dialogue before the first RCPT is the "handshake"; RFC 5321 §4.5.3.2.7 gives a server 5 minutes per command.
    handshakeTimeoutMs: r.integer(o, "handshakeTimeoutMs", path, protocol === "smtp" ? SMTP_HANDSHAKE_TIMEOUT_MS : DEFAULTS.handshakeTimeoutMs, 1, DAY_MS),
    ...readTlsListener(r, o, path, protocol, protection),
    routes,
    smtp: readSmtpListener(r, o, path, protocol),
    gate: readGateConfig(r, protection, [...path, "protection"]),
    ...optional("http", readHttpListener(r, o, path, protocol)),
    ...optional("acceptProxyProtocol", readAcceptProxyProtocol(r, o, path)),
  };
}

/** `"acceptProxyProtocol": { "from": ["CIDR", …] }`: whose PROXY headers are believed (no one else's are read). */
function readAcceptProxyProtocol(r: ConfigReader, o: Obj, path: JsonPath): { from: Cidr[] } | undefined {
  if (o.acceptProxyProtocol === undefined) return undefined;
  const at = [...path, "acceptProxyProtocol"];
  const a = r.object(o.acceptProxyProtocol, at, ["from"]);
  if (!a) return undefined;
  const from: Cidr[] = [];
  if (a.from === undefined) r.fail(at, "acceptProxyProtocol needs from: the proxies whose headers are believed, e.g. [\"10.0.0.5/32\"]");
  else r.array(a.from, [...at, "from"])?.forEach((c, i) => {
    const cidr = typeof c === "string" ? parseCidr(c) : null;
    if (!cidr) r.fail([...at, "from", i], `not an address range: ${JSON.stringify(c)} (expected e.g. "10.0.0.5/32")`);
    else from.push(cidr);
  });
  if (Array.isArray(a.from) && a.from.length === 0) r.fail([...at, "from"], "from is empty: no peer would be read (leave acceptProxyProtocol out)");
  return { from };
}

/** `{ key: value }`, or nothing when value is undefined (optional keys stay absent). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** A listener's `protection` object, key-checked once; each stage reads its own keys from it. */
function readProtection(r: ConfigReader, value: unknown, path: JsonPath): Obj {
  if (value === undefined) return {};
  const o = r.object(value, path, PROTECTION_KEYS) ?? {};
  return o;
}

function readRoute(r: ConfigReader, value: unknown, path: JsonPath, index: number, protocol: ListenerConfig["protocol"]): RouteConfig | undefined {
  const o = r.object(value, path, ROUTE_KEYS);
  if (!o) return undefined;
  for (const key of UNBUILT_ROUTE_KEYS) if (key in o) notBuilt(r, [...path, key], key);
  if (o.suspended === true) notBuilt(r, [...path, "suspended"], "suspended routes");
  else r.boolean(o, "suspended", path, false);
  const proxyProtocol = r.oneOf(o, "proxyProtocol", path, ["v1", "v2", "none"] as const, "none");
  // The header goes out on the pipeline's upstream socket; http dials (and pools) its own upstreams,
  // and upstream TLS starts its handshake before the socket's open, so neither has the header yet.
  if (proxyProtocol !== "none" && protocol === "http") notBuilt(r, [...path, "proxyProtocol"], "proxyProtocol on http routes");
  if (proxyProtocol !== "none" && o.upstreamTls !== undefined) notBuilt(r, [...path, "proxyProtocol"], "proxyProtocol with upstreamTls");
  const balance = r.oneOf(o, "balance", path, BALANCE_POLICIES, "round-robin");
  if (protocol !== "smtp" && typeof o.match === "object" && o.match !== null) {
    for (const k of SMTP_MATCH_KEYS) if (k in o.match) r.fail([...path, "match", k], `match.${k} needs protocol "smtp" (this listener is "${protocol}")`);
  }

  const upstreams: UpstreamConfig[] = [];
  const chain = readChain(r, o.upstreams, [...path, "upstreams"]);
  if (o.upstreams !== undefined && chain === undefined) r.array(o.upstreams, [...path, "upstreams"])?.forEach((u, i) => {
    const up = readUpstream(r, u, [...path, "upstreams", i]);
    if (up) upstreams.push(up);
  });
  // least-cpu samples the thread behind each upstream: it needs them all to say which (pid, tid).
  if (balance === "least-cpu") upstreams.forEach((u, i) => {
    if (u.kind !== "unix" || u.pid === undefined || u.tid === undefined) {
      r.fail([...path, "upstreams", i], `least-cpu needs every upstream to be { "unix": PATH, "pid": N, "tid": N } (the thread whose CPU use is sampled)`);
    }
  });
  const respond = o.respond === undefined ? null : readRespond(r, o.respond, [...path, "respond"], protocol);
  const http = readHttpRoute(r, o, path, protocol);
  const wroteUpstreams = Array.isArray(o.upstreams) && o.upstreams.length > 0; // bad entries are reported on their own
  const actions = (wroteUpstreams ? 1 : 0) + (respond ? 1 : 0) + httpActionCount(http);
  if (actions === 0) r.fail(path, protocol === "http" ? "a route needs upstreams (or respond, redirect or drop)" : "a route needs upstreams (or respond)");
  else if (upstreams.length > 0 && respond) r.fail([...path, "respond"], "a route has either upstreams or respond, not both");
  else if (actions > 1) r.fail(path, "a route has one of upstreams, respond, redirect or drop, not several");

  return {
    name: r.string(o, "name", path, `route${index}`),
    match: o.match === undefined ? null : readMatch(r, o.match, [...path, "match"], protocol),
    upstreams,
    balance,
    respond,
    rateLimit: readRouteRate(r, o, path),
    ...readTlsRoute(r, o, path, protocol),
    ...optional("proxyProtocol", proxyProtocol === "none" ? undefined : proxyProtocol),
    ...readSmtpRoute(r, o, path, protocol),
    ...optional("http", http),
    ...optional("chain", chain),
  };
}

/**
 * `"upstreams": [{ "listener": NAME }]`: the route's plaintext continues into another listener. It is
 * the route's only upstream (there is nothing to balance); the name is checked against the other
 * listeners once all are read ({@link checkChains}). undefined when the upstreams are addresses.
 */
function readChain(r: ConfigReader, value: unknown, path: JsonPath): string | undefined {
  if (!Array.isArray(value) || !value.some((u) => typeof u === "object" && u !== null && "listener" in u)) return undefined;
  if (value.length !== 1) return r.fail(path, `an upstream { "listener": … } is the route's only upstream (the connection continues into that listener)`);
  const o = r.object(value[0], [...path, 0], ["listener"]);
  return o ? r.string(o, "listener", [...path, 0]) : undefined;
}

function readMatch(r: ConfigReader, value: unknown, path: JsonPath, protocol: ListenerConfig["protocol"]): RouteMatch | null {
  const o = r.object(value, path, MATCH_KEYS);
  if (!o) return null;
  const clientCidr: Cidr[] = [];
  const list = o.clientCidr === undefined ? [] : typeof o.clientCidr === "string" ? [o.clientCidr] : r.array(o.clientCidr, [...path, "clientCidr"]);
  list?.forEach((c, i) => {
    const at = typeof o.clientCidr === "string" ? [...path, "clientCidr"] : [...path, "clientCidr", i];
    const cidr = typeof c === "string" ? parseCidr(c) : null;
    if (!cidr) r.fail(at, `not an address range: ${JSON.stringify(c)} (expected e.g. "10.0.0.0/8")`);
    else clientCidr.push(cidr);
  });
  // An empty match would silently act as a default route; require the operator to say so.
  if (Object.keys(o).length === 0) r.fail(path, "match is empty: leave it out to make the default route");
  if (Array.isArray(o.clientCidr) && o.clientCidr.length === 0) r.fail([...path, "clientCidr"], "clientCidr is empty: it would match no client (leave it out to match any)");
  return { clientCidr, ...readProtocolMatch(r, o, path), ...readSmtpMatch(r, o, path), ...readHttpMatch(r, o, path, protocol), ...readMysqlMatch(r, o, path, protocol) };
}

function readUpstream(r: ConfigReader, value: unknown, path: JsonPath): UpstreamConfig | undefined {
  if (typeof value === "string") value = { address: value };
  const o = r.object(value, path, ["address", "unix", "pid", "tid"]);
  if (!o) return undefined;
  if ((o.address === undefined) === (o.unix === undefined)) return r.fail(path, "an upstream needs exactly one of address or unix");
  if (o.address !== undefined) {
    const a = readAddress(r, o.address, [...path, "address"], false);
    if (a?.kind === "unix") return { kind: "unix", path: a.path, text: `unix:${a.path}` };
    return a ? { kind: "address", address: a, text: String(o.address) } : undefined;
  }
  const p = r.string(o, "unix", path);
  if (p === undefined) return undefined;
  if (!p.startsWith("/")) return r.fail([...path, "unix"], `unix socket path must be absolute: "${p}"`);
  const checked = parseSocketAddress(`unix:${p}`); // the same length limit as "unix:/path" addresses
  if (typeof checked === "string") return r.fail([...path, "unix"], checked);
  const pid = o.pid === undefined ? undefined : r.integer(o, "pid", path, 0, 1, 2 ** 22);
  const tid = o.tid === undefined ? undefined : r.integer(o, "tid", path, 0, 1, 2 ** 22);
  return { kind: "unix", path: p, pid, tid, text: `unix:${p}` };
}

function readRespond(r: ConfigReader, value: unknown, path: JsonPath, protocol: ListenerConfig["protocol"]): RespondConfig | null {
  const o = r.object(value, path, ["status", "contentType", "body", ...(protocol === "http" ? ["headers"] : [])]);
  if (!o) return null;
  const headers = protocol === "http" ? readRespondHeaders(r, o.headers, [...path, "headers"]) : [];
  return {
    status: r.integer(o, "status", path, 200, 100, 599),
    contentType: r.string(o, "contentType", path, "text/plain; charset=utf-8"),
    body: r.string(o, "body", path, ""),
    ...(headers.length > 0 ? { headers } : {}),
  };
}

function readAddress(r: ConfigReader, value: unknown, path: JsonPath, listening: boolean): SocketAddress | undefined {
  if (typeof value !== "string") return r.fail(path, `an address must be a string like "127.0.0.1:7000", got ${JSON.stringify(value)}`);
  // Port 0 (the kernel picks) is allowed for listening: tests and ad-hoc runs read the bound port from the log.
  const a = parseSocketAddress(value, { allowPortZero: listening });
  if (typeof a === "string") return r.fail(path, a);
  if (listening && a.kind === "inet" && !a.literal && a.host !== "localhost") {
    return r.fail(path, `listen on an IP address, not a host name: "${a.host}"`);
  }
  return a;
}

/** The identity of a listen address for duplicate checks: one spelling per address; null for port 0. */
function addressKey(a: SocketAddress): string | null {
  if (a.kind === "unix") return `unix:${a.path}`;
  if (a.port === 0) return null;
  const ip = parseIp(a.host === "localhost" ? "127.0.0.1" : a.host);
  const host = ip ? formatIp(ip) : a.host;
  return ip?.family === 6 ? `[${host}]:${a.port}` : `${host}:${a.port}`;
}

/** Listen addresses seen so far in the config: by identity, and by IP family and port. */
interface SeenAddresses {
  readonly exact: Map<string, string>;
  /** Listeners written with `"listen": []`, by name. */
  readonly unaddressed: Map<string, JsonPath>;
  readonly byPort: Map<string, { readonly key: string; readonly listener: string; readonly wildcard: boolean }[]>;
}

/**
 * A wildcard (0.0.0.0:P, [::]:P) beside another address of its family on the same port: the
 * wildcard takes them all, so the other could only be bound with SO_REUSEPORT, and which socket gets
 * a client would be the kernel's choice. The message, or null. IPv6 sockets are IPV6_V6ONLY, so
 * 0.0.0.0:P beside [::]:P is fine.
 */
function overlapping(a: SocketAddress, key: string, listener: string, seen: SeenAddresses): string | null {
  if (a.kind !== "inet") return null;
  const ip = parseIp(a.host === "localhost" ? "127.0.0.1" : a.host);
  if (!ip) return null;
  const wildcard = ip.bytes.every((b) => b === 0);
  const group = `${ip.family}/${a.port}`;
  const others = seen.byPort.get(group) ?? [];
  const clash = others.find((o) => o.wildcard || wildcard);
  others.push({ key, listener, wildcard });
  seen.byPort.set(group, others);
  if (!clash) return null;
  const any = wildcard ? key : clash.key;
  return `listen address ${key} overlaps ${clash.key} of listener "${clash.listener}" (${any.slice(0, any.lastIndexOf(":"))} takes every IPv${ip.family} address on port ${a.port}): listen on one or the other`;
}

function notBuilt(r: ConfigReader, path: JsonPath, what: string): void {
  r.fail(path, `${what} is not built yet in this version (see the status table in README.md)`);
}
