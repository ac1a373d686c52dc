/**
 * The way a connection travels, one named function per stage, top to bottom. This file is the only
 * caller of the next stage: the protocol module (src/protocol/module.ts, chosen by the listener's
 * `protocol` in src/protocol/registry.ts) and the stage helpers answer with named steps, and the
 * socket events that move a connection on (bytes before routing, a TLS handshake, the upstream's
 * connect) arrive in the handlers at the end of this file, which hand them to the stage they belong to.
 *
 *   accept ─► gate ─► greet? ─► sniff* ─► route ─► routed ─► terminate? ─► dial ─► connected ─► upstream handshake? ─► relay ─► finish
 *                                                              └─► chain: into another listener's greet/sniff/route
 *
 * - tcp (speaksFirst "unknown"): nothing is read; the route is chosen at accept and the client's
 *   bytes wait in the kernel until the upstream is connected.
 * - Modules that read first collect the client's bytes (src/proxy/sniff-stage.ts, by reading or
 *   peeking) until their sniff answers; a `terminate-tls` answer ends TLS before routing and sniffs
 *   again over the plaintext (postgres).
 * - After routing, the module's `routed` says whether to dial or to end TLS first (tls routes with
 *   terminateTls), and the dial follows the handshake; or, for a route whose upstream is a listener,
 *   the plaintext continues into that listener's module (src/proxy/chain.ts).
 * - The relay (src/relay/userspace.ts, or a kernel engine) starts once the upstream is connected and
 *   the module's upstream handshake, if any, is done.
 * Every failure closes this one connection with a reason (src/proxy/finish.ts abort), which ends up
 * in the counters, the access log and the resolver's onDisconnect; refusals before routing are
 * counted per protocol (src/proxy/refusal.ts). Holding is a stage of a later version.
 * @module
 */
import type { Socket, SocketHandler } from "bun";
import { dialTargetText, resolveEndpoint, type DialTarget } from "../upstream/endpoint.ts";
import { resolveWithTimeout, ResolveTimeout } from "../route/resolver.ts";
import { cacheKey, resolveContext } from "../route/resolve-context.ts";
import { Conn, LOGGED_BY_MODULE, DIALING, FINISHED, HANDSHAKING, NOT_OURS, RESPONDING, SNIFFING, UPSTREAM_HANDSHAKE } from "./conn.ts";
import type { ListenerRuntime, RouteRuntime } from "./runtime.ts";
import { moveInto } from "./chain.ts";
import type { Counters } from "../control/metrics.ts";
import { abort } from "./finish.ts";
import { refuseConnection } from "./refusal.ts";
import { Intake } from "./intake.ts";
import { BLOCK_CLOSE_REASON, type BlockReason } from "../protect/gate.ts";
import { ConnFacts, NO_FACTS } from "../protocol/facts.ts";
import { DIAL, type HandshakeStep, type ProtocolModule, type RoutedStep, type ServedConnections, type SniffStep } from "../protocol/module.ts";
import { collectRead, collectsByPeeking, sniffCollected } from "./sniff-stage.ts";
import { NOTICE, peekAgain, readInstead, startPeeking, stopWaiting, waitForMore, whenMoreArrives } from "./hello-peek.ts";
import { beginTermination, handshakeOutcome, type TlsServerHandlers } from "../tls/terminate.ts";
import { routeUpstreamTls, upstreamHandshake as upstreamTlsHandshake, upstreamTlsFor } from "../tls/upstream.ts";
import { CLIENT_HANDLERS, UPSTREAM_HANDLERS, startRelay } from "../relay/userspace.ts";
import { acceptedNatively, dialNatively } from "../relay/uring-accept.ts";
import type { RouteTls } from "../tls/route-tls.ts";
import { awaitProxyHeader, awaitingProxyHeader, endedBeforeProxyHeader, fromTrustedProxy, proxyHeaderData, writeProxyHeader } from "./proxy-header-stage.ts";

// ─── accept ──────────────────────────────────────────────────────────────────────────────────────

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
  // A trusted proxy's PROXY header first (acceptProxyProtocol): {@link proxyHeaderRead} goes on from there.
  if (listener.proxyHeaderFrom !== null && fromTrustedProxy(conn, listener.proxyHeaderFrom)) return awaitProxyHeader(conn);
  admit(conn, null);
}

/**
 * After accept, or after a trusted proxy's header (`early`: the client's bytes that came with it):
 * the gate, then the listener's first stage.
 */
function admit(conn: Conn, early: Uint8Array | null): void {
  if (gate(conn) === "closed") return;
  const listener = conn.listener;
  const module = listener.module;
  if (!listener.readsFirst) {
    // Nothing is read before the upstream is connected: what the client sends waits in the kernel.
    conn.client.pause();
    if (early !== null) acceptEarly(conn, early);
    return route(conn);
  }
  conn.facts = new ConnFacts();
  conn.intake = new Intake(module.newState?.(conn) ?? null);
  conn.flags |= SNIFFING | HANDSHAKING;
  greet(conn, module);
  // After a header the socket has been read, so the first bytes are collected by reading too.
  if (early === null && collectsByPeeking(module)) {
    startPeeking(conn);
    sniffPeeked(conn, 0);
  } else if (early !== null && early.length > 0) {
    sniffRead(conn, early);
  }
  // Otherwise the client is readable: its bytes come to sniffRead (SNIFF_HANDLERS.data).
}

/** tcp after a header: the client's bytes read with it wait for the upstream, first in line. */
function acceptEarly(conn: Conn, early: Uint8Array): void {
  conn.flags &= ~HANDSHAKING;
  conn.bytesIn += early.length;
  if (early.length > 0) conn.upQueue().push(early.slice());
}

/** accept, trusted proxy: a chunk while its PROXY header is awaited (src/proxy/proxy-header-stage.ts). */
function proxyHeaderRead(conn: Conn, chunk: Uint8Array): void {
  const outcome = proxyHeaderData(conn, chunk);
  if (outcome.kind === "read") return admit(conn, outcome.rest);
  if (outcome.kind === "refuse") refuseConnection(conn, outcome.reason, outcome.detail);
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

/** greet: protocols whose server speaks first get the module's greeting before anything is read. */
function greet(conn: Conn, module: ProtocolModule): void {
  const hello = module.speaksFirst === "proxy" ? module.greeting?.(conn) : null;
  if (hello) {
    conn.bytesOut += hello.length;
    conn.client.write(hello);
  }
}

// ─── sniff ───────────────────────────────────────────────────────────────────────────────────────

/** sniff, read path: a chunk of the client's first bytes. */
function sniffRead(conn: Conn, chunk: Uint8Array): void {
  sniffed(conn, collectRead(conn, chunk));
}

/** sniff, peek path: look again at what is queued (at accept, and on each notice of new bytes). */
function sniffPeeked(conn: Conn, bits: number): void {
  const seen = peekAgain(conn);
  if (seen === "more") {
    const step = sniffCollected(conn);
    if (step.kind !== "need-more") {
      stopWaiting(conn);
      return sniffed(conn, step);
    }
  } else if (seen !== "nothing-new") {
    return abort(conn, seen.reason, seen.detail);
  }
  // The client stopped (FIN) before it said enough: as the read path's end handler says.
  if (bits & NOTICE.ended) return abort(conn, conn.intake!.first.size > 0 ? "incomplete_handshake" : "client_closed");
  if (waitForMore(conn) === "refused") readInstead(conn);
}
whenMoreArrives(sniffPeeked);

/** The module's answer to the bytes so far. */
function sniffed(conn: Conn, step: SniffStep): void {
  switch (step.kind) {
    case "need-more":
      return;
    case "route":
      endSniffing(conn);
      if (conn.listener.module.serve) return serve(conn);
      return route(conn);
    case "terminate-tls":
      endSniffing(conn);
      return terminate(conn, conn.listener.preRouteTls!);
    case "handled":
      conn.flags &= ~(SNIFFING | HANDSHAKING);
      return;
    case "refuse":
      return refuseConnection(conn, step.reason, step.detail);
  }
}

function endSniffing(conn: Conn): void {
  conn.flags &= ~SNIFFING;
  conn.client.pause();
}

/**
 * serve: the module routes per message itself (HTTP) and gets the client's events from here on
 * ({@link servedHandlers}); handshakeTimeoutMs no longer applies, idleTimeoutMs does.
 */
function serve(conn: Conn): void {
  const served = conn.listener.module.serve!;
  conn.flags = (conn.flags | (served.logsEachMessage ? LOGGED_BY_MODULE : 0)) & ~HANDSHAKING;
  countUnder(conn, conn.listener.perRequest); // no longer "never got a route": each message gets its own
  served.start(conn);
}

/**
 * The configuration `conn` runs under was replaced (reload) or the service drains: a served
 * connection ends at its next message boundary (ServedConnections.retire); others run to their end.
 */
export function retire(conn: Conn): void {
  if (conn.flags & FINISHED) return;
  conn.listener.module.serve?.retire?.(conn);
}

// ─── route ───────────────────────────────────────────────────────────────────────────────────────

/** route: the resolver module first (if any), then the listener's route table. */
function route(conn: Conn): void {
  if (conn.listener.state.resolver) return routeByResolver(conn);
  routeByTable(conn);
}

function routeByTable(conn: Conn): void {
  const chosen = conn.listener.table.match(conn.clientIp, conn.facts ?? NO_FACTS);
  if (!chosen) return abort(conn, "no_route");
  useRoute(conn, chosen);
  if (chosen.gate.admit() === "routeRateLimited") return void blocked(conn, "routeRateLimited");
  if (chosen.config.respond) {
    conn.flags |= RESPONDING;
    conn.client.resume();
    return;
  }
  routed(conn, chosen, conn.listener.module.routed?.(conn, chosen) ?? DIAL);
}

/** The module's answer to the chosen route. */
function routed(conn: Conn, chosen: RouteRuntime, step: RoutedStep): void {
  if (step.kind === "terminate-tls") return terminate(conn, chosen.tls!);
  dial(conn, chosen);
}

function useRoute(conn: Conn, chosen: RouteRuntime): void {
  conn.route = chosen;
  countUnder(conn, chosen.counters);
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
  const intake = conn.intake;
  const ctx = resolveContext({
    listener: conn.listener.config.name, port: (intake?.raw ?? conn.client).localPort, clientIp: conn.clientIp, clientPort: conn.clientPort,
    data: intake ? intake.first.bytes() : null,
  }, conn.facts ?? NO_FACTS);
  const key = cacheKey(ctx);
  const cached = state.cache.get(key);
  if (cached !== undefined) return dialResolved(conn, cached);
  resolveWithTimeout(state.resolver!, ctx, conn.listener.config.resolveTimeoutMs).then(
    function resolverAnswered(answer) {
      if (answer === null || answer === undefined) return routeByTable(conn);
      if ("status" in answer) return abort(conn, "resolver_refused", `status ${answer.status}${answer.message ? `: ${answer.message}` : ""}`);
      if (typeof answer.endpoint !== "string") return abort(conn, "resolver_error", "answer has no endpoint string");
      if (answer.cache !== false) state.cache.set(key, answer.endpoint);
      dialResolved(conn, answer.endpoint);
    },
    function resolverFailed(e: unknown) {
      abort(conn, e instanceof ResolveTimeout ? "resolver_timeout" : "resolver_error", String((e as Error)?.message ?? e));
    },
  );
}

/**
 * dial, resolver path: the resolver chose an endpoint. There is no route to say "terminate", so the
 * module's routed(null) must dial (a tls listener passes the bytes through).
 */
function dialResolved(conn: Conn, endpoint: string): void {
  if (conn.reason !== null) return; // the client left while the resolver was deciding
  conn.upstreamText = endpoint;
  conn.listener.module.routed?.(conn, null);
  countUnder(conn, conn.listener.resolved);
  const policy = { fromOperator: false, skipValidation: conn.listener.config.skipValidation };
  resolveEndpoint(endpoint, policy).then(function endpointResolved(r) {
    if (r.ok) connectUpstream(conn, r.target);
    else abort(conn, r.reason, r.detail);
  });
}

// ─── terminate (TLS ended here) ──────────────────────────────────────────────────────────────────

/** terminate: the TLS server handshake with `settings`; {@link tlsHandshake} goes on from there. */
function terminate(conn: Conn, settings: RouteTls): void {
  const refusal = beginTermination(conn, settings, readingFirstHandlers(conn.listener.module).tls);
  if (refusal) sniffed(conn, refusal);
}

/** The TLS socket's handshake ended: dial the chosen route, or sniff again over the plaintext. */
function tlsHandshake(s: Socket<Conn>, ok: boolean, authorizationError: Error | null): void {
  const conn = s.data;
  if (s !== conn.client || conn.flags & NOT_OURS) return;
  const refusal = handshakeOutcome(conn, s, ok, authorizationError);
  if (refusal) return sniffed(conn, refusal);
  const chosen = conn.route;
  if (chosen) return chosen.chainTarget ? chain(conn, chosen.chainTarget) : dial(conn, chosen);
  conn.flags |= SNIFFING;
  conn.client.resume();
}

// ─── chain (into another listener) ───────────────────────────────────────────────────────────────

/**
 * chain: the plaintext continues into `target` as if it had accepted it: its module's handlers take
 * the TLS socket (Bun's reload swaps them in place), then greet, sniff (always by reading: the
 * plaintext exists only in the TLS library) and route as on `target`'s own connections.
 */
function chain(conn: Conn, target: ListenerRuntime): void {
  moveInto(conn, target);
  const module = target.module;
  const raw = conn.intake!.raw;
  conn.intake = new Intake(module.newState?.(conn) ?? null);
  conn.intake.raw = raw;
  conn.lastActive = performance.now(); // the target's handshakeTimeoutMs runs from here
  (conn.client as unknown as { reload(o: { socket: object }): void }).reload({ socket: readingFirstHandlers(module).tls });
  if (!target.readsFirst) {
    conn.flags &= ~SNIFFING;
    conn.client.pause();
    return route(conn);
  }
  conn.flags |= SNIFFING | HANDSHAKING;
  greet(conn, module);
  conn.client.resume();
}

// ─── dial ────────────────────────────────────────────────────────────────────────────────────────

/** dial: pick one of the route's upstreams and connect to it. */
function dial(conn: Conn, chosen: RouteRuntime): void {
  const i = chosen.balancer.pick();
  conn.upstreamIndex = i;
  conn.upstreamText = chosen.config.upstreams[i]!.text;
  const known = chosen.targets[i];
  if (known) {
    if (known.ok) connectUpstream(conn, known.target, chosen.targetTexts[i]);
    else abort(conn, known.reason, known.detail);
    return;
  }
  const policy = { fromOperator: true, skipValidation: conn.listener.config.skipValidation };
  resolveEndpoint(conn.upstreamText, policy).then(function endpointResolved(r) {
    if (r.ok) connectUpstream(conn, r.target);
    else abort(conn, r.reason, r.detail);
  });
}

/**
 * Connect (timed out by the sweeper); {@link connected} goes on from the upstream socket's open.
 * `text`: the target's text when the route made it already (RouteRuntime.targetTexts).
 */
function connectUpstream(conn: Conn, target: DialTarget, text?: string | null): void {
  if (conn.reason !== null) return; // the client left while we were deciding
  conn.intake?.first.clear(); // whatever the upstream must get is in conn.pendingUp now
  conn.flags = (conn.flags | DIALING) & ~HANDSHAKING; // the connect timeout takes over from the handshake timeout
  conn.lastActive = performance.now(); // the sweeper times the dial from here
  conn.upstreamAddr = text ?? dialTargetText(target);
  if (acceptedNatively(conn)) return dialNatively(conn, target); // no Bun socket: the uring engine dials
  // Failures arrive in the handlers' connectError; the promise's rejection is the same event.
  const handlers = upstreamHandlersFor(conn.listener.module);
  const tls = target.kind === "inet" && handlers.startTls === null ? upstreamTlsFor(conn, hostOf(conn.upstreamText ?? target.ip)) : undefined;
  const socket = tls ? handlers.tls : handlers.plain;
  if (target.kind === "unix") Bun.connect<Conn>({ unix: target.path, socket, data: conn, allowHalfOpen: true }).catch(ignore);
  else Bun.connect<Conn>({ hostname: target.ip, port: target.port, socket, data: conn, allowHalfOpen: true, tls }).catch(ignore);
}

function ignore(): void {}

/** "host:port" or "[v6]:port" → host (the name a TLS upstream's certificate is checked against). */
function hostOf(endpoint: string): string {
  return endpoint.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
}

// ─── connected, upstream handshake, relay ────────────────────────────────────────────────────────

/** connected: the upstream socket is open. */
function connected(upstream: Socket<Conn>): void {
  const conn = upstream.data;
  if (conn.reason !== null) return void upstream.end(); // the client left, or we gave up waiting
  conn.upstream = upstream;
  conn.routeCounters.observeConnect(performance.now() - conn.lastActive); // lastActive: set when the dial began
  // Before any other byte: the backend's banner, a handshake, the client's ClientHello (route proxyProtocol).
  const proxyHeader = conn.route?.config.proxyProtocol;
  if (proxyHeader) writeProxyHeader(conn, upstream, proxyHeader);
  // TCP_NODELAY: Bun already sets it on every accepted and connected TCP socket (seen with strace),
  // so only keepalive is ours. Bun 1.4.5 sets SO_KEEPALIVE and leaves the timers to the kernel.
  if (!conn.upstreamText?.startsWith("unix:")) upstream.setKeepAlive(true, 60);
  if (conn.clientIp !== "unix") conn.client.setKeepAlive(true, 60);
  const handshake = conn.listener.module.upstreamHandshake;
  if (!handshake) return startRelay(conn);
  conn.flags |= UPSTREAM_HANDSHAKE;
  if (handshake.clientData) conn.client.resume();
  upstreamHandshaken(conn, handshake.start(conn));
}

/** A client chunk during the upstream handshake, for modules that read the client then (clientData). */
function handshakeClientData(conn: Conn, chunk: Uint8Array): void {
  const read = conn.listener.module.upstreamHandshake?.clientData;
  if (!read) return void clientData(conn.client, chunk as Buffer); // not read during the handshake: the relay stashes it
  conn.lastActive = performance.now();
  conn.bytesIn += chunk.length;
  upstreamHandshaken(conn, read(conn, chunk));
}

/** The module's answer during its upstream handshake (timed as the dial is: connectTimeoutMs). */
function upstreamHandshaken(conn: Conn, step: HandshakeStep): void {
  switch (step.kind) {
    case "need-more":
      return;
    case "relay":
      conn.flags &= ~UPSTREAM_HANDSHAKE;
      conn.client.pause(); // startRelay writes what waits for the upstream first, then resumes it
      return startRelay(conn);
    case "fail":
      return abort(conn, step.reason, step.detail);
    case "start-tls":
      return startUpstreamTls(conn);
  }
}

/**
 * The module asked the upstream for TLS in its protocol (UpstreamHandshake.tlsStarted): TLS over
 * the connected socket with the route's upstreamTls. The TLS socket is `conn.upstream` from here;
 * the one under it still reports its (encrypted) reads to the plain handlers, which ignore them.
 */
function startUpstreamTls(conn: Conn): void {
  const handlers = upstreamHandlersFor(conn.listener.module).startTls;
  const tls = routeUpstreamTls(conn, hostOf(conn.upstreamText ?? ""));
  if (!handlers || !tls) return abort(conn, "upstream_tls_unconfigured", "the module asked for upstream TLS on a route without upstreamTls");
  const raw = conn.upstream! as unknown as { upgradeTLS(o: object): [Socket<Conn>, Socket<Conn>] };
  const [, secured] = raw.upgradeTLS({ tls, socket: handlers, data: conn });
  conn.upstream = secured;
  conn.markUserspaceOnly(); // the plaintext exists only inside the TLS library
}

/** The TLS handshake over an upgraded upstream ended: the module goes on, or the connection closes. */
function upstreamTlsReady(s: Socket<Conn>, ok: boolean, authorizationError: Error | null): void {
  const conn = s.data;
  if (s !== conn.upstream || conn.flags & FINISHED) return;
  // Bun's `ok` is "verified": with verify off an unverified peer goes on (a broken handshake closes the socket).
  const verify = conn.route?.config.upstreamTls?.verify ?? true;
  if (verify && (!ok || authorizationError)) return abort(conn, "upstream_tls_failed", authorizationError?.message ?? "handshake failed");
  upstreamHandshaken(conn, conn.listener.module.upstreamHandshake!.tlsStarted!(conn));
}

// ─── socket handlers ─────────────────────────────────────────────────────────────────────────────

type ClientHandlers = Omit<SocketHandler<Conn>, "open">;

const clientData = CLIENT_HANDLERS.data!;
const clientEnd = CLIENT_HANDLERS.end!;
const clientDrain = CLIENT_HANDLERS.drain!;
const clientClose = CLIENT_HANDLERS.close!;
const clientError = CLIENT_HANDLERS.error!;

/**
 * Client handlers of listeners that read first (accepted sockets and the TLS sockets made over them):
 * the relay's, with read bytes going to the sniff stage while SNIFFING, and the events of an accepted
 * socket that now carries a TLS socket left to the TLS socket, which is `conn.client` from then on.
 */
const SNIFF_HANDLERS: ClientHandlers = {
  binaryType: "uint8array",
  data: readingFirstData(clientData),
  drain(s) {
    if (s === s.data.client) clientDrain(s);
  },
  end(s) {
    const conn = s.data;
    if (s !== conn.client || conn.flags & NOT_OURS) return;
    // A client that stops before it has said enough to be routed: nothing to relay.
    if (conn.flags & SNIFFING) return abort(conn, conn.intake!.first.size > 0 ? "incomplete_handshake" : "client_closed");
    clientEnd(s);
  },
  close(s, error) {
    if (s === s.data.client) clientClose(s, error);
  },
  error(s, error) {
    if (s === s.data.client) clientError(s, error);
  },
};

/** The data handler of listeners that read first; once routed, chunks go to `relayData`. */
function readingFirstData(relayData: (s: Socket<Conn>, chunk: Buffer) => void): SocketHandler<Conn>["data"] {
  return function data(s, chunk) {
    const conn = s.data;
    if (s !== conn.client || conn.flags & NOT_OURS) return;
    if (conn.flags & (SNIFFING | UPSTREAM_HANDSHAKE)) {
      if (conn.flags & SNIFFING) return sniffRead(conn, chunk);
      return handshakeClientData(conn, chunk);
    }
    relayData(s, chunk);
  };
}

interface ClientHandlerSet {
  /** Accepted sockets. */
  readonly accepted: ClientHandlers;
  /** TLS sockets made over accepted ones. */
  readonly tls: TlsServerHandlers;
}

const READING_FIRST: ClientHandlerSet = { accepted: SNIFF_HANDLERS, tls: { ...SNIFF_HANDLERS, open() {}, handshake: tlsHandshake } };

/**
 * Per module that inspects the client after routing (ProtocolModule.relayClientData) or serves its
 * connections itself (ProtocolModule.serve): its handlers, made once.
 */
const HANDLERS_OF = new Map<ProtocolModule, ClientHandlerSet>();

function readingFirstHandlers(module: ProtocolModule): ClientHandlerSet {
  const inspect = module.relayClientData;
  const served = module.serve;
  if (!inspect && !served) return READING_FIRST;
  let set = HANDLERS_OF.get(module);
  if (!set) {
    const accepted: ClientHandlers = served
      ? servedHandlers(served)
      : { ...SNIFF_HANDLERS, data: readingFirstData(function inspected(s, chunk) { inspect!.call(module, s.data, chunk); }) };
    HANDLERS_OF.set(module, (set = { accepted, tls: { ...accepted, open() {}, handshake: tlsHandshake } }));
  }
  return set;
}

/**
 * Client handlers of listeners whose module serves its connections (ProtocolModule.serve): the sniff
 * stage's while SNIFFING, the module's once it started. Made once per module, so other listeners'
 * handlers (and their per-read path) are unchanged.
 */
function servedHandlers(served: ServedConnections): ClientHandlers {
  return {
    ...SNIFF_HANDLERS,
    data(s, chunk) {
      const conn = s.data;
      if (s !== conn.client || conn.flags & NOT_OURS) return;
      if (conn.flags & SNIFFING) return sniffRead(conn, chunk);
      served.data(conn, chunk);
    },
    drain(s) {
      const conn = s.data;
      if (s === conn.client && !(conn.flags & (SNIFFING | NOT_OURS))) served.drain(conn);
    },
    end(s) {
      const conn = s.data;
      if (s !== conn.client || conn.flags & NOT_OURS) return;
      if (conn.flags & SNIFFING) return abort(conn, conn.intake!.first.size > 0 ? "incomplete_handshake" : "client_closed");
      served.end(conn);
    },
    close(s, error) {
      if (s !== s.data.client) return;
      served.close(s.data);
      clientClose(s, error);
    },
  };
}

/** The client handlers of `listener`'s accepted sockets, without `open` (src/listen/listeners.ts adds it). */
export function clientHandlers(listener: ListenerRuntime): ClientHandlers {
  const base = listener.readsFirst ? readingFirstHandlers(listener.module).accepted : CLIENT_HANDLERS;
  return listener.proxyHeaderFrom === null ? base : proxyHeaderHandlers(base);
}

/** Per set of client handlers: the same, reading a trusted proxy's PROXY header first; made once. */
const PROXY_HEADER_HANDLERS_OF = new Map<ClientHandlers, ClientHandlers>();

/**
 * Handlers of listeners with acceptProxyProtocol only (others keep theirs, and their per-read path):
 * while a header is awaited the bytes are the header stage's, and an end is a refusal.
 */
function proxyHeaderHandlers(base: ClientHandlers): ClientHandlers {
  let set = PROXY_HEADER_HANDLERS_OF.get(base);
  if (set) return set;
  const data = base.data!;
  const end = base.end!;
  set = {
    ...base,
    data(s, chunk) {
      if (awaitingProxyHeader(s.data)) return proxyHeaderRead(s.data, chunk);
      data(s, chunk);
    },
    end(s) {
      if (awaitingProxyHeader(s.data)) return refuseConnection(s.data, endedBeforeProxyHeader(s.data));
      end(s);
    },
  };
  PROXY_HEADER_HANDLERS_OF.set(base, set);
  return set;
}

interface UpstreamHandlerSet {
  readonly plain: SocketHandler<Conn>;
  /** For upstream TLS (route upstreamTls): a failed handshake or verification is named as such. */
  readonly tls: SocketHandler<Conn>;
  /** Modules whose handshake starts upstream TLS itself (tlsStarted): the TLS socket's handlers; else null. */
  readonly startTls: SocketHandler<Conn> | null;
}

/** Per module: the relay's upstream handlers (or the module's), opening into {@link connected}; made once. */
const UPSTREAM_HANDLERS_OF = new Map<ProtocolModule, UpstreamHandlerSet>();

function upstreamHandlersFor(module: ProtocolModule): UpstreamHandlerSet {
  let set = UPSTREAM_HANDLERS_OF.get(module);
  if (!set) UPSTREAM_HANDLERS_OF.set(module, (set = composeUpstreamHandlers(module)));
  return set;
}

function composeUpstreamHandlers(module: ProtocolModule): UpstreamHandlerSet {
  const base = module.upstreamHandlers ?? UPSTREAM_HANDLERS;
  const handshake = module.upstreamHandshake;
  const plain: SocketHandler<Conn> = handshake ? { ...base, open: connected, data: handshakeData(base, handshake.data), end: handshakeEnd(base) } : { ...base, open: connected };
  if (!handshake?.tlsStarted) return { plain, tls: { ...plain, handshake: upstreamTlsHandshake }, startTls: null };
  // The socket under an upgraded one keeps these handlers: its events are the TLS socket's to report.
  const current = currentUpstreamOnly(plain);
  return { plain: current, tls: { ...current, handshake: upstreamTlsHandshake }, startTls: { ...current, open() {}, handshake: upstreamTlsReady } };
}

/** `handlers` for the socket that is conn.upstream; events of any other (the raw socket under TLS) are dropped. */
function currentUpstreamOnly(handlers: SocketHandler<Conn>): SocketHandler<Conn> {
  const out: SocketHandler<Conn> = { ...handlers };
  for (const name of ["data", "drain", "end", "error"] as const) {
    const handler = handlers[name] as ((s: Socket<Conn>, ...rest: unknown[]) => void) | undefined;
    if (handler) (out as Record<string, unknown>)[name] = function ifCurrent(s: Socket<Conn>, ...rest: unknown[]) {
      if (s === s.data.upstream) handler(s, ...rest);
    };
  }
  return out;
}

/** While the module's upstream handshake runs, the upstream's bytes are the module's. */
function handshakeData(base: SocketHandler<Conn>, moduleData: (conn: Conn, chunk: Uint8Array) => HandshakeStep): SocketHandler<Conn>["data"] {
  const relayData = base.data!;
  return function upstreamData(s, chunk) {
    const conn = s.data;
    if (!(conn.flags & UPSTREAM_HANDSHAKE)) return relayData(s, chunk);
    if (conn.flags & FINISHED) return;
    conn.lastActive = performance.now();
    upstreamHandshaken(conn, moduleData(conn, chunk));
  };
}

/** An upstream that closes during the handshake has not accepted the connection. */
function handshakeEnd(base: SocketHandler<Conn>): SocketHandler<Conn>["end"] {
  const relayEnd = base.end!;
  return function upstreamEnd(s) {
    const conn = s.data;
    if (conn.flags & UPSTREAM_HANDSHAKE) return abort(conn, "upstream_closed_in_handshake");
    relayEnd(s);
  };
}
