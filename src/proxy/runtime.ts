/**
 * The configuration turned into what the hot path uses: per listener its route table and counters,
 * per route its balancer and its upstreams' dial targets (IP literals resolved once, here).
 * @module
 */
import type { Config, ListenerConfig, RouteConfig } from "../config/types.ts";
import { Counters, Metrics } from "../control/metrics.ts";
import { Balancer } from "../upstream/balancer.ts";
import { cpuLoadOf } from "../upstream/cpu-load.ts";
import { literalEndpoint, type DialTarget, type EndpointResult } from "../upstream/endpoint.ts";
import { RouteTable } from "../route/table.ts";
import { RouteCache } from "../route/cache.ts";
import type { Resolver } from "../route/resolver.ts";
import type { AccessLog } from "../log/access-log.ts";
import type { Conn } from "./conn.ts";
import { ListenerGate, RouteGate } from "../protect/gate.ts";
import { ListenerCerts } from "../tls/certs.ts";
import { RouteTls } from "../tls/route-tls.ts";
import { UPSTREAM_HANDLERS } from "../relay/userspace.ts";
import { PG_UPSTREAM_HANDLERS } from "../postgres/cancel.ts";
import type { SocketHandler } from "bun";
import { nextConnId } from "./conn-id.ts";

export class RouteRuntime {
  readonly counters: Counters;
  readonly balancer: Balancer;
  /** Per upstream: its checked dial target, or null for a DNS name (looked up per connection). */
  readonly targets: (EndpointResult | null)[];
  readonly gate: RouteGate;
  /** Certificates and settings when this route terminates TLS; null otherwise. */
  readonly tls: RouteTls | null;

  constructor(readonly config: RouteConfig, readonly listener: ListenerRuntime, metrics: Metrics) {
    this.gate = new RouteGate(listener.config.name, config);
    this.tls = config.terminateTls && listener.certs ? new RouteTls(listener.config, config, listener.certs) : null;
    this.counters = metrics.route(listener.config.name, config.name);
    const cpuOf = config.balance === "least-cpu" ? cpuLoadOf(config.name, config.upstreams) : null;
    this.balancer = new Balancer(config.balance, config.upstreams.length, Math.random, cpuOf);
    const policy = { fromOperator: true, skipValidation: listener.config.skipValidation };
    this.targets = config.upstreams.map((u) => literalEndpoint(u.text, policy));
  }
}

/** Route name used in metrics for connections that never got a route. */
export const UNROUTED = "-";
/** Route name used in metrics for connections placed by the resolver module. */
export const RESOLVED = "(resolver)";

export class ListenerRuntime {
  readonly counters: Counters;
  /** Counters of connections that never got a route or an endpoint (resolver failure, no route…). */
  readonly unrouted: Counters;
  /** Counters of connections whose endpoint the resolver module chose. */
  readonly resolved: Counters;
  readonly routes: RouteRuntime[];
  readonly table: RouteTable<RouteRuntime>;
  readonly gate: ListenerGate;
  /** tls and postgres listeners read the client's first bytes before routing (src/proxy/sniff-stage.ts). */
  readonly sniffs: boolean;
  /** tls and postgres listeners: their certificates (loaded when the configuration is applied). */
  readonly certs: ListenerCerts | null;
  /** postgres listeners: TLS before any route is known (SSLRequest or direct TLS). */
  readonly preRouteTls: RouteTls | null;
  /** Socket handlers of this listener's upstream connections (postgres watches for BackendKeyData). */
  readonly upstreamHandlers: SocketHandler<Conn>;

  constructor(readonly config: ListenerConfig, readonly state: ProxyState, metrics: Metrics) {
    this.gate = new ListenerGate(config);
    this.sniffs = config.protocol === "tls" || config.protocol === "postgres";
    this.certs = this.sniffs ? new ListenerCerts(config) : null;
    this.preRouteTls = config.protocol === "postgres" ? new RouteTls(config, null, this.certs!) : null;
    this.upstreamHandlers = config.protocol === "postgres" ? PG_UPSTREAM_HANDLERS : UPSTREAM_HANDLERS;
    this.counters = metrics.listener(config.name);
    this.unrouted = metrics.route(config.name, UNROUTED);
    this.resolved = metrics.route(config.name, RESOLVED);
    this.routes = config.routes.map((r) => new RouteRuntime(r, this, metrics));
    this.table = new RouteTable(this.routes);
  }
}

/** Everything a running proxy process shares between its connections. */
export class ProxyState {
  readonly listeners: ListenerRuntime[];
  /** Resolver answers (endpoint text) by routing key; see src/route/cache.ts. */
  readonly cache: RouteCache<string>;
  readonly live = new Set<Conn>();

  constructor(
    readonly config: Config,
    readonly metrics: Metrics,
    readonly resolver: Resolver | null,
    readonly accessLog: AccessLog | null,
  ) {
    this.listeners = config.listeners.map((l) => new ListenerRuntime(l, this, metrics));
    this.cache = new RouteCache(config.routeCache.ttlMs, config.routeCache.maxEntries, (k) => BigInt(Bun.hash.wyhash(k)));
  }

  /** Unique in the process, across reloads (src/proxy/conn-id.ts). */
  nextId(): number {
    return nextConnId();
  }
}

export type { DialTarget };
