/**
 * A running proxy and the ways it changes while it carries traffic: reload (SIGHUP, POST /reload)
 * and graceful stop. A reload validates first; an invalid configuration is refused with its
 * FILE:LINE:COL lines and the running one carries on. A valid one takes effect for new connections at
 * once: addresses that stay are re-pointed without closing their socket, new ones are bound, gone ones
 * stop accepting. Established connections keep the configuration they started with until they end.
 * @module
 */
import type { Config } from "../config/types.ts";
import { ConfigError } from "../config/load.ts";
import { log } from "../log/logger.ts";
import { AccessLog } from "../log/access-log.ts";
import { Metrics } from "./metrics.ts";
import { loadResolverModule, type Resolver } from "../route/resolver.ts";
import { ProxyState } from "../proxy/runtime.ts";
import { reset } from "../proxy/finish.ts";
import { retire } from "../proxy/pipeline.ts";
import { startTimeoutSweeper } from "../proxy/timeout-sweeper.ts";
import { bindAddress, rebind, type SocketSource } from "../listen/listeners.ts";
import type { BoundListener } from "../listen/bound-listener.ts";
import { socketKey } from "../listen/socket-key.ts";
import { fdPressure } from "../listen/fd-pressure.ts";

/** `unchanged`: not reloaded, the same edit was just applied (src/control/reload-coalescer.ts). */
export type ReloadResult = { ok: true; unchanged?: true } | { ok: false; errors: readonly string[] };

export class Service {
  readonly metrics = new Metrics();
  /** The current state last; older ones stay while connections that started under them are open. */
  #states: ProxyState[] = [];
  /** Bound sockets by {@link socketKey}. */
  readonly #bound = new Map<string, BoundListener>();
  #accessLog: AccessLog | null = null;
  #resolverFile: string | null = null;
  #resolver: Resolver | null = null;
  #resolverLoads = 0;
  #stopSweeper: () => void = () => {};
  #draining = false;

  /** `load` reads the configuration again from where it came (file, flags, environment). */
  /** `sockets`: where listening sockets come from (a worker's are the supervisor's). */
  constructor(readonly load: () => Config, readonly sockets: SocketSource = { kind: "bind" }) {}

  get current(): ProxyState {
    return this.#states[this.#states.length - 1]!;
  }

  /** Connections open under any configuration. */
  get open(): number {
    return this.#states.reduce((n, s) => n + s.live.size, 0);
  }

  async start(config: Config): Promise<void> {
    const state = await this.#prepare(config);
    this.#apply(state);
    this.#stopSweeper = startTimeoutSweeper(state, () => this.#states);
    fdPressure.watch(() => this.#bound.values(), this.metrics);
  }

  /** Validate and apply the configuration as it is now; never throws. */
  async reload(trigger: string): Promise<ReloadResult> {
    if (this.#draining) return { ok: false, errors: ["the service is stopping"] };
    let state: ProxyState;
    const counted = this.metrics.names();
    try {
      state = await this.#prepare(this.load());
      this.#apply(state);
    } catch (e) {
      // Its runtimes made counters for listeners and routes that never ran: no series for them.
      this.metrics.forgetAddedSince(counted);
      this.metrics.reloads.failed++;
      const errors = e instanceof ConfigError ? e.lines : [(e as Error).message];
      log.error(`${trigger}: reload refused, the running configuration stays`, { errors });
      return { ok: false, errors };
    }
    this.metrics.reloads.ok++;
    log.info(`${trigger}: configuration reloaded`, { config: state.config.source, listeners: state.listeners.length });
    return { ok: true };
  }

  /** SIGHUP: reopen log files (logrotate), then reload. */
  async hangup(trigger: string): Promise<ReloadResult> {
    this.reopenLogs();
    return this.reload(trigger);
  }

  reopenLogs(): void {
    this.#accessLog?.reopen();
  }

  /** Stop accepting, let open connections finish up to drainTimeoutMs, then close them. */
  async drain(signal: string): Promise<void> {
    const { drainTimeoutMs } = this.current.config;
    this.#draining = true;
    log.info(`${signal}: draining`, { open: this.open, drainTimeoutMs });
    fdPressure.stop();
    for (const b of this.#bound.values()) b.stop(false);
    this.#retire(this.#states);
    const deadline = Date.now() + drainTimeoutMs;
    while (this.open > 0 && Date.now() < deadline) await Bun.sleep(50);
    this.closeAll(this.open > 0 ? "drain_timeout" : "shutdown");
  }

  /** Every listening socket's fd by socket key, for a binary upgrade (Bun listeners expose theirs). */
  listeningSockets(): [string, number[]][] {
    const out: [string, number[]][] = [];
    for (const [key, b] of this.#bound) {
      const fd = b.fd;
      if (fd >= 0) out.push([key, [fd]]);
    }
    return out;
  }

  /** Cut every open connection with RST (mid-stream: a FIN would pass a truncated stream as whole). */
  closeAll(reason: string): void {
    for (const state of this.#states) for (const conn of state.live) reset(conn, reason);
    this.#stopSweeper();
    this.#accessLog?.close();
  }

  /** Everything that can fail, done before anything changes: resolver module, access log. */
  async #prepare(config: Config): Promise<ProxyState> {
    if (config.resolver !== this.#resolverFile) {
      // A new query string makes the module loader read the file again rather than reuse the old one.
      this.#resolver = config.resolver ? await loadResolverModule(config.resolver, ++this.#resolverLoads) : null;
      this.#resolverFile = config.resolver;
      if (config.resolver) log.info("resolver module loaded", { file: config.resolver });
    }
    if (config.log.access === "off") {
      this.#accessLog?.close();
      this.#accessLog = null;
    } else {
      this.#accessLog ??= new AccessLog();
      this.#accessLog.open(config.log.access);
    }
    log.configure(config.log.level, config.log.format);
    return new ProxyState(config, this.metrics, this.#resolver, this.#accessLog);
  }

  /** Bind or re-point every address of `state`, stop the ones it no longer has. */
  #apply(state: ProxyState): void {
    const wanted = new Map<string, { address: Config["listeners"][number]["listen"][number]; listener: ProxyState["listeners"][number] }>();
    for (const listener of state.listeners) for (const address of listener.config.listen) wanted.set(socketKey(address, listener.config.name), { address, listener });
    const added: { key: string; bound: BoundListener }[] = [];
    try {
      for (const [key, { address, listener }] of wanted) {
        if (!this.#bound.has(key)) added.push({ key, bound: bindAddress(address, listener, key, this.sockets) });
      }
    } catch (e) {
      for (const a of added) a.bound.stop(true);
      throw e;
    }
    for (const [text, { address, listener }] of wanted) {
      const existing = this.#bound.get(text);
      if (existing) rebind(existing, listener, address);
    }
    for (const { key, bound } of added) {
      this.#bound.set(key, bound);
      fdPressure.joined(bound);
      // A worker's sockets are the supervisor's, which logs them once with their real port.
      if (!bound.inherited) log.info("listening", { address: bound.bound, configured: bound.address });
    }
    for (const [key, b] of this.#bound) {
      if (wanted.has(key)) continue;
      b.stop(false); // open connections on it carry on
      this.#bound.delete(key);
      log.info("stopped listening", { address: b.bound });
    }
    const older = this.#states.filter((s) => s.live.size > 0);
    this.#retire(older); // a served connection (HTTP keep-alive) would otherwise keep the old routes for its life
    this.#states = [...older, state];
  }

  /** Tell every open connection of `states` that its configuration is retired (src/proxy/pipeline.ts retire). */
  #retire(states: readonly ProxyState[]): void {
    for (const s of states) for (const conn of [...s.live]) retire(conn);
  }
}
