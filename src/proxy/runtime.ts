/**
 * The configuration turned into what the hot path uses: per listener its route table and counters,
 * per route its balancer and its upstreams' dial targets (IP literals resolved once, here).
 * @module
 */
import type { Config, ListenerConfig, Protocol, RouteConfig } from "../config/types.ts";
import { Counters, Metrics } from "../control/metrics.ts";
import { Balancer } from "../upstream/balancer.ts";
import { cpuLoadOf } from "../upstream/cpu-load.ts";
import { dialTargetText, literalEndpoint, type DialTarget, type EndpointResult } from "../upstream/endpoint.ts";
import { RouteTable } from "../route/table.ts";
import { RouteCache } from "../route/cache.ts";
import type { Resolver } from "../route/resolver.ts";
import type { AccessLog } from "../log/access-log.ts";
import type { Conn } from "./conn.ts";
import { ListenerGate, RouteGate } from "../protect/gate.ts";
import { ListenerCerts } from "../tls/certs.ts";
import { RouteTls } from "../tls/route-tls.ts";
import { nextConnId } from "./conn-id.ts";
import { ConnTable } from "./conn-table.ts";
import { CidrSet } from "../net/ip.ts";
import { protocolModule } from "../protocol/registry.ts";
import type { ProtocolModule } from "../protocol/module.ts";

export class RouteRuntime {
  readonly counters: Counters;
  readonly balancer: Balancer;
  /** Per upstream: its checked dial target, or null for a DNS name (looked up per connection). */
  readonly targets: (EndpointResult | null)[];
  /**
   * Per upstream: its dial target's text (Conn.upstreamAddr), made once, so a connection shares it
   * rather than keeping a string of its own; null where `targets` has no target.
   */
  readonly targetTexts: (string | null)[];
  readonly gate: RouteGate;
  /** Certificates and settings when this route terminates TLS; null otherwise. */
  readonly tls: RouteTls | null;
  /** The listener this route's plaintext continues into (route `chain`), set once all listeners exist; null otherwise. */
  chainTarget: ListenerRuntime | null = null;

  constructor(readonly config: RouteConfig, readonly listener: ListenerRuntime, metrics: Metrics) {
    this.gate = new RouteGate(listener.config.name, config);
    this.tls = config.terminateTls && listener.certs ? new RouteTls(listener.config, config, listener.certs) : null;
    this.counters = metrics.route(listener.config.name, config.name);
    const cpuOf = config.balance === "least-cpu" ? cpuLoadOf(config.name, config.upstreams) : null;
    this.balancer = new Balancer(config.balance, config.upstreams.length, Math.random, cpuOf);
    const policy = { fromOperator: true, skipValidation: listener.config.skipValidation };
    this.targets = config.upstreams.map((u) => literalEndpoint(u.text, policy));
    this.targetTexts = this.targets.map((t) => (t?.ok ? dialTargetText(t.target) : null));
  }
}

/** Route name used in metrics for connections that never got a route. */
export const UNROUTED = "-";
/** Route name used in metrics for connections placed by the resolver module. */
export const RESOLVED = "(resolver)";
/**
 * Route name used in metrics for connections whose module routes each message itself (HTTP: each
 * request has its route; switchyard_http_requests_total counts them by it).
 */
export const PER_REQUEST = "(per-request)";

export class ListenerRuntime {
  readonly counters: Counters;
  /** Counters of connections that never got a route or an endpoint (resolver failure, no route…). */
  readonly unrouted: Counters;
  /** Counters of connections whose endpoint the resolver module chose. */
  readonly resolved: Counters;
  /** Counters of connections the module serves, routing each message (ProtocolModule.serve); `unrouted` for other protocols. */
  readonly perRequest: Counters;
  readonly routes: RouteRuntime[];
  readonly table: RouteTable<RouteRuntime>;
  readonly gate: ListenerGate;
  /** What the listener's `protocol` contributes to the pipeline (src/protocol/registry.ts). */
  readonly module: ProtocolModule;
  /** The client's first bytes are read before routing (handshakeTimeoutMs applies). */
  readonly readsFirst: boolean;
  /** Listeners whose protocol ends TLS itself: their certificates (loaded when the configuration is applied). */
  readonly certs: ListenerCerts | null;
  /** TLS ended before any route is known (postgres: SSLRequest or direct TLS); null when only routes terminate. */
  readonly preRouteTls: RouteTls | null;
  /** acceptProxyProtocol.from: peers that open with a PROXY header; null when the listener reads none. */
  readonly proxyHeaderFrom: CidrSet | null;

  constructor(readonly config: ListenerConfig, readonly state: ProxyState, metrics: Metrics) {
    this.gate = new ListenerGate(config);
    this.module = state.moduleOf(config.protocol);
    this.readsFirst = this.module.speaksFirst !== "unknown";
    this.certs = this.module.certificates ? new ListenerCerts(config) : null;
    const early = this.module.tlsBeforeRouting;
    this.preRouteTls = early && this.certs ? new RouteTls(config, null, this.certs, early.alpn) : null;
    this.proxyHeaderFrom = config.acceptProxyProtocol ? new CidrSet(config.acceptProxyProtocol.from) : null;
    this.counters = metrics.listener(config.name);
    this.unrouted = metrics.route(config.name, UNROUTED);
    this.resolved = metrics.route(config.name, RESOLVED);
    this.perRequest = this.module.serve ? metrics.route(config.name, PER_REQUEST) : this.unrouted;
    this.routes = config.routes.map((r) => new RouteRuntime(r, this, metrics));
    this.table = new RouteTable(this.routes);
  }
}

/** Everything a running proxy process shares between its connections. */
export class ProxyState {
  readonly listeners: ListenerRuntime[];
  /** Resolver answers (endpoint text) by routing key; see src/route/cache.ts. */
  readonly cache: RouteCache<string>;
  /** Open connections (a table, not a Set: 105 B per entry saved to about 24, src/proxy/conn-table.ts). */
  readonly live = new ConnTable<Conn>();

  constructor(
    readonly config: Config,
    readonly metrics: Metrics,
    readonly resolver: Resolver | null,
    readonly accessLog: AccessLog | null,
    /** The module of each listener's protocol: the registry's (tests give their own to try the pipeline's stages). */
    readonly moduleOf: (protocol: Protocol) => ProtocolModule = protocolModule,
  ) {
    this.listeners = config.listeners.map((l) => new ListenerRuntime(l, this, metrics));
    const byName = new Map(this.listeners.map((l) => [l.config.name, l]));
    for (const l of this.listeners) for (const r of l.routes) if (r.config.chain !== undefined) r.chainTarget = byName.get(r.config.chain) ?? null;
    this.cache = new RouteCache(config.routeCache.ttlMs, config.routeCache.maxEntries, (k) => BigInt(Bun.hash.wyhash(k)));
  }

  /** Unique in the process, across reloads (src/proxy/conn-id.ts). */
  nextId(): number {
    return nextConnId();
  }
}

export type { DialTarget };
