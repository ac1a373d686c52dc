/**
 * The way a TCP connection travels, one named function per stage of DESIGN.md, top to bottom:
 *
 *   accept ─► gate ─► sniff? ─► route ─► tls? ─► upstream ─► relay ─► finish
 *
 * A plain TCP listener routes on what it knows at accept (listener, port, client address). tls and
 * postgres listeners first sniff (src/proxy/sniff-stage.ts: the ClientHello, the startup message)
 * and route on what the client said; a tls listener's route then terminates or passes TLS through
 * (src/tls/stage.ts). Holding is a stage of a later version. Every failure closes this one
 * connection with a reason, which ends up in the counters, the access log and the resolver's onDisconnect.
 * @module
 */
import type { Socket } from "bun";
import { resolveEndpoint, type DialTarget } from "../upstream/endpoint.ts";
import { resolveWithTimeout, ResolveTimeout, type ResolveContext } from "../route/resolver.ts";
import { Conn, DIALING, HANDSHAKING, RESPONDING } from "./conn.ts";
import type { ListenerRuntime, RouteRuntime } from "./runtime.ts";
import type { Counters } from "../control/metrics.ts";
import { abort } from "./finish.ts";
import { BLOCK_CLOSE_REASON, type BlockReason } from "../protect/gate.ts";
import { startSniff } from "./sniff-stage.ts";
import { passThrough, tlsStage, upstreamTlsFor, UPSTREAM_TLS_HANDLERS } from "../tls/stage.ts";
import type { RouteFacts } from "../route/table.ts";
import { formatSocketAddress } from "../net/address.ts";

/** accept: a new client socket on one of `listener`'s addresses. */
export function accept(listener: ListenerRuntime, client: Socket<Conn>): void {
  const state = listener.state;
  const conn = new Conn(state.nextId(), listener, client);
  client.data = conn;
  state.live.add(conn);
  listener.counters.active++;
  listener.counters.total++;
  conn.routeCounters.active++;
  conn.routeCounters.total++;
  if (gate(conn) === "closed") return;
  if (listener.sniffs) return sniff(conn);
  // Nothing is read before the upstream is connected: what the client sends waits in the kernel.
  client.pause();
  route(conn);
}

/** gate: checks that need no bytes (src/protect/gate.ts). */
function gate(conn: Conn): "continue" | "closed" {
  const g = conn.listener.gate;
  if (!g.enabled) return "continue";
  const result = g.admit(conn.clientIp);
  if (typeof result === "object") {
    conn.gateTicket = result;
    return "continue";
  }
  return blocked(conn, result);
}

function blocked(conn: Conn, reason: BlockReason): "closed" {
  conn.listener.counters.countBlocked(reason);
  abort(conn, BLOCK_CLOSE_REASON[reason]);
  return "closed";
}

/** sniff: tls and postgres listeners read the first bytes; the sniff stage calls route() when it has its facts. */
function sniff(conn: Conn): void {
  startSniff(conn);
}

/** route: the resolver module first (if any), then the listener's route table. */
export function route(conn: Conn): void {
  if (conn.listener.state.resolver) {
    routeByResolver(conn);
    return;
  }
  routeByTable(conn);
}

function routeByTable(conn: Conn): void {
  const route = conn.listener.table.match(routeFacts(conn));
  if (!route) return abort(conn, "no_route");
  useRoute(conn, route);
  if (route.gate.admit() === "routeRateLimited") return void blocked(conn, "routeRateLimited");
  if (route.config.respond) {
    conn.flags |= RESPONDING;
    conn.client.resume();
    return;
  }
  if (conn.listener.config.protocol === "tls") return tlsStage(conn, route);
  dialRoute(conn, route);
}

function routeFacts(conn: Conn): RouteFacts {
  const p = conn.proto;
  if (!p) return { clientIp: conn.clientIp };
  return { clientIp: conn.clientIp, sni: p.sni, alpn: p.alpn, database: p.database, user: p.user };
}

/** upstream: pick one of the route's upstreams and connect to it. */
export function dialRoute(conn: Conn, route: RouteRuntime): void {
  const i = route.balancer.pick();
  conn.upstreamIndex = i;
  conn.upstreamText = route.config.upstreams[i]!.text;
  const known = route.targets[i];
  if (known) {
    if (known.ok) connectUpstream(conn, known.target);
    else abort(conn, known.reason, known.detail);
    return;
  }
  const policy = { fromOperator: true, skipValidation: conn.listener.config.skipValidation };
  resolveEndpoint(conn.upstreamText, policy).then((r) => (r.ok ? connectUpstream(conn, r.target) : abort(conn, r.reason, r.detail)));
}

function useRoute(conn: Conn, route: RouteRuntime): void {
  conn.route = route;
  countUnder(conn, route.counters);
}

/** Move the connection's route-level counting from "unrouted" to where it was placed. */
function countUnder(conn: Conn, counters: Counters): void {
  conn.routeCounters.active--;
  conn.routeCounters.total--;
  conn.routeCounters = counters;
  counters.active++;
  counters.total++;
}

function routeByResolver(conn: Conn): void {
  const state = conn.listener.state;
  const ctx = resolveContext(conn);
  // The resolver sees the sniffed facts; its key includes them, or one tenant's answer would serve another's.
  const p = conn.proto;
  const key = p ? `${ctx.listener}\0${ctx.port}\0${ctx.client.ip}\0${ctx.sni}\0${ctx.alpn}\0${ctx.database}\0${ctx.user}` : `${ctx.listener}\0${ctx.port}\0${ctx.client.ip}`;
  const cached = state.cache.get(key);
  if (cached !== undefined) return dialResolved(conn, cached);
  resolveWithTimeout(state.resolver!, ctx, conn.listener.config.resolveTimeoutMs).then(
    (answer) => {
      if (answer === null || answer === undefined) return routeByTable(conn);
      if ("status" in answer) return abort(conn, "resolver_refused", `status ${answer.status}${answer.message ? `: ${answer.message}` : ""}`);
      if (typeof answer.endpoint !== "string") return abort(conn, "resolver_error", "answer has no endpoint string");
      if (answer.cache !== false) state.cache.set(key, answer.endpoint);
      dialResolved(conn, answer.endpoint);
    },
    (e: unknown) => abort(conn, e instanceof ResolveTimeout ? "resolver_timeout" : "resolver_error", String((e as Error)?.message ?? e)),
  );
}

function resolveContext(conn: Conn): ResolveContext {
  const c = conn.proto?.raw ?? conn.client;
  const p = conn.proto;
  return {
    listener: conn.listener.config.name, port: c.localPort, client: { ip: conn.clientIp, port: conn.clientPort },
    data: p ? p.first.bytes : null, sni: p?.sni ?? null, alpn: p?.alpn[0] ?? null, ja3: p?.ja3 ?? null, ja4: p?.ja4 ?? null,
    host: null, path: null, database: p?.database ?? null, user: p?.user ?? null, ehlo: null,
    clientCert: p?.clientIdentity ?? null,
  };
}

function dialResolved(conn: Conn, endpoint: string): void {
  conn.upstreamText = endpoint;
  // A tls listener's resolver answer has no route to say "terminate": the bytes pass through.
  if (conn.listener.config.protocol === "tls") passThrough(conn);
  countUnder(conn, conn.listener.resolved);
  const policy = { fromOperator: false, skipValidation: conn.listener.config.skipValidation };
  resolveEndpoint(endpoint, policy).then((r) => (r.ok ? connectUpstream(conn, r.target) : abort(conn, r.reason, r.detail)));
}

/** upstream: connect (timed out by the sweeper); the relay starts in the upstream socket's open handler. */
function connectUpstream(conn: Conn, target: DialTarget): void {
  if (conn.reason !== null) return; // the client left while we were deciding
  conn.flags = (conn.flags | DIALING) & ~HANDSHAKING; // the connect timeout takes over from the handshake timeout
  conn.lastActive = performance.now(); // the sweeper times the dial from here
  conn.upstreamAddr = formatSocketAddress(target.kind === "inet" ? { kind: "inet", host: target.ip, port: target.port, literal: true } : target);
  // Failures arrive in UPSTREAM_HANDLERS.connectError; the promise's rejection is the same event.
  const tls = target.kind === "inet" ? upstreamTlsFor(conn, hostOf(conn.upstreamText ?? target.ip)) : undefined;
  const socket = tls ? UPSTREAM_TLS_HANDLERS : conn.listener.upstreamHandlers;
  if (target.kind === "unix") Bun.connect<Conn>({ unix: target.path, socket, data: conn, allowHalfOpen: true }).catch(ignore);
  else Bun.connect<Conn>({ hostname: target.ip, port: target.port, socket, data: conn, allowHalfOpen: true, tls }).catch(ignore);
}

function ignore(): void {}

/** "host:port" or "[v6]:port" → host (the name a TLS upstream's certificate is checked against). */
function hostOf(endpoint: string): string {
  return endpoint.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
}
