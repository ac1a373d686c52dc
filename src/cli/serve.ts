/**
 * `switchyard serve`: load the configuration, bind every listener, run until SIGTERM/SIGINT, then
 * drain. One process for now (workers and reload are a later step).
 * @module
 */
import type { Config } from "../config/types.ts";
import { log } from "../log/logger.ts";
import { AccessLog } from "../log/access-log.ts";
import { Metrics } from "../control/metrics.ts";
import { startAdmin } from "../control/admin.ts";
import { nativeStatus } from "../native/index.ts";
import { loadResolverModule, type Resolver } from "../route/resolver.ts";
import { ProxyState } from "../proxy/runtime.ts";
import { startTimeoutSweeper } from "../proxy/timeout-sweeper.ts";
import { relayEngine } from "../relay/splice.ts";
import { bindListener, type BoundListener } from "../listen/listeners.ts";
import { formatSocketAddress } from "../net/address.ts";
import { abort } from "../proxy/finish.ts";

export async function serve(config: Config): Promise<void> {
  const native = nativeStatus();
  if (native.loaded) log.info("native library loaded", { abi: native.abi });
  else log.warn("native library unavailable, using the userspace relay only", { reason: native.reason });

  let resolver: Resolver | null = null;
  if (config.resolver) {
    resolver = await loadResolverModule(config.resolver);
    log.info("resolver module loaded", { file: config.resolver });
  }

  let accessLog: AccessLog | null = null;
  if (config.log.access !== "off") {
    accessLog = new AccessLog();
    accessLog.open(config.log.access);
  }
  const metrics = new Metrics();
  const state = new ProxyState(config, metrics, resolver, accessLog);

  const bound: BoundListener[] = [];
  try {
    for (const listener of state.listeners) bound.push(...bindListener(listener));
  } catch (e) {
    for (const b of bound) b.server.stop(true);
    throw e;
  }
  for (const b of bound) {
    const s = b.server as { hostname?: string; port?: number; unix?: string };
    const actual = "port" in b.server && s.port !== undefined ? formatSocketAddress({ kind: "inet", host: s.hostname!, port: s.port, literal: true }) : b.address;
    log.info("listening", { address: actual, configured: b.address });
  }
  const admin = startAdmin(config, metrics);
  if (admin) log.info("admin API listening", { address: admin.url.href });
  const stopSweeper = startTimeoutSweeper(state);
  const engine = relayEngine(config);
  log.info("switchyard ready", { config: config.source, listeners: state.listeners.length, relay: engine });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn(`second ${signal}: closing every connection now`);
      for (const conn of state.live) abort(conn, "shutdown");
      accessLog?.close();
      process.exit(0);
    }
    stopping = true;
    log.info(`${signal}: draining`, { open: state.live.size, drainTimeoutMs: config.drainTimeoutMs });
    for (const b of bound) b.server.stop(false);
    admin?.stop(true);
    const deadline = Date.now() + config.drainTimeoutMs;
    const check = setInterval(() => {
      if (state.live.size > 0 && Date.now() < deadline) return;
      clearInterval(check);
      for (const conn of state.live) abort(conn, "drain_timeout");
      stopSweeper();
      accessLog?.close();
      log.info("stopped");
      process.exit(0);
    }, 50);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => {
    accessLog?.reopen();
    log.info("SIGHUP: log files reopened (configuration reload is not built yet)");
  });
}
