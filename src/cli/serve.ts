/**
 * `switchyard serve`: run the service in one of three shapes and react to signals.
 * - workers = 1: one process that accepts and relays (no supervisor: nothing between the kernel and
 *   the relay, and one process less).
 * - workers > 1 (or "auto": one per core): a supervisor ({@link Supervisor}) holding the listening
 *   sockets and N workers of this same binary on them. Needs the native library (sockets made without
 *   accepting on them); without it, one process, said once in the log.
 * - a worker (SWITCHYARD_WORKER set by the supervisor).
 * Signals (supervisor or single process): SIGHUP reopens log files and reloads (so does a change of
 * the config file, and POST /reload; one edit reloads once: src/control/reload-coalescer.ts),
 * SIGTERM/SIGINT drain and exit 0 (a second one closes at once),
 * SIGUSR2 upgrades the binary (src/control/upgrade.ts). Under systemd (NOTIFY_SOCKET) it reports READY=1,
 * RELOADING=1, STOPPING=1 and pings the watchdog; sockets passed by systemd (LISTEN_FDS) are used
 * instead of binding.
 * @module
 */
import { watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { Server } from "bun";
import type { Config } from "../config/types.ts";
import { log } from "../log/logger.ts";
import { startAdmin, type AdminActions } from "../control/admin.ts";
import { Service } from "../control/service.ts";
import { Supervisor, workerCommand, workerCount } from "../control/supervisor.ts";
import { announceUpgraded, Upgrade, UPGRADE_ENV, type HandedSockets } from "../control/upgrade.ts";
import { runWorker } from "../control/worker.ts";
import { WORKER_ENV } from "../control/ipc.ts";
import { notifyReloading, sdNotify, startWatchdog } from "../control/sd-notify.ts";
import { ReloadCoalescer } from "../control/reload-coalescer.ts";
import { nativeStatus } from "../native/index.ts";
import { socketsUnavailable } from "../native/sockets.ts";
import { relayEngine, relaySample } from "../relay/engine.ts";
import { SocketSet, type Inherited } from "../listen/socket-set.ts";
import type { SocketSource } from "../listen/listeners.ts";
import { systemdSockets } from "../listen/systemd.ts";
import { listenError } from "../listen/native-socket.ts";
import { limitsAttach, limitsCreate } from "../native/limits.ts";
import { SharedLimitTable } from "../protect/shared-table.ts";
import { useLimitTable } from "../protect/gate.ts";

/** During an upgrade the old process still holds the admin port for a moment: retry this long. */
const ADMIN_BIND_RETRY_MS = 10_000;

export async function serve(config: Config, load: () => Config): Promise<void> {
  if (process.env[WORKER_ENV.slot] !== undefined) return runWorker(config, load, process.env);
  const native = nativeStatus();
  if (native.loaded) log.info("native library loaded", { abi: native.abi });
  else log.warn("native library unavailable, using the userspace relay only", { reason: native.reason });

  const inherited = inheritedSockets();
  const count = workerCount(config.workers);
  const socketsWhy = socketsUnavailable();
  if (count > 1 && socketsWhy === null) return superviseWorkers(config, load, count, inherited);
  if (count > 1) log.warn("workers need the native library (listening sockets the supervisor holds); running one process", { workers: count, reason: socketsWhy });
  return serveOneProcess(config, load, inherited);
}

/** What signal handling needs of a running service, whichever its shape. */
interface Running {
  /** Every reload (signal, file watcher, POST /reload) goes through here. */
  reloads: ReloadCoalescer;
  /** Stop accepting, let open connections finish up to drainTimeoutMs, then close them. */
  stop(signal: string, handedOver: boolean): Promise<void>;
  /** A second stop signal: close everything now. */
  kill(): void;
  /** The listening sockets and their fds, for a binary upgrade. */
  sockets(): HandedSockets;
}

async function superviseWorkers(config: Config, load: () => Config, count: number, inherited: Inherited | null): Promise<void> {
  const supervisor = new Supervisor(load, config, count, inherited);
  const reloads = new ReloadCoalescer(configFile(config), {
    reload: (trigger, reopen) => supervisor.reload(trigger, reopen),
    reopenLogs: () => supervisor.reopenLogs(),
  });
  const admin = await adminAround(config, inherited, {
    config: () => supervisor.config,
    reload: () => reloads.requested("POST /reload", false),
    metrics: () => supervisor.metrics(),
  }, () => supervisor.start());
  // The supervisor reports RELOADING=1/READY=1 around its reloads and STOPPING=1 itself.
  runUntilStopped(config, inherited, admin, { workers: count }, {
    reloads,
    stop: (signal, handedOver) => supervisor.stop(signal, handedOver),
    kill: () => supervisor.kill(),
    sockets: () => supervisor.handedSockets(),
  });
}

async function serveOneProcess(config: Config, load: () => Config, inherited: Inherited | null): Promise<void> {
  const service = new Service(load, oneProcessSockets(config, inherited));
  useSharedLimits();
  const reloads = new ReloadCoalescer(configFile(config), {
    reload: async (trigger, reopen) => {
      notifyReloading();
      try {
        return await (reopen ? service.hangup(trigger) : service.reload(trigger));
      } finally {
        sdNotify("READY=1");
      }
    },
    reopenLogs: () => service.reopenLogs(),
  });
  // The admin listener and the relay engine are fixed for the life of the process.
  const admin = await adminAround(config, inherited, {
    config: () => service.current.config,
    reload: () => reloads.requested("POST /reload", false),
    metrics: () => service.metrics,
  }, () => service.start(config));
  const engine = relayEngine(config);
  service.metrics.relayEngine = engine;
  service.metrics.sampleRelay = relaySample;
  runUntilStopped(config, inherited, admin, { relay: engine }, {
    reloads,
    stop: async (signal, handedOver) => {
      if (!handedOver) sdNotify("STOPPING=1");
      await service.drain(signal);
    },
    kill: () => service.closeAll("shutdown"),
    sockets: () => service.listeningSockets(),
  });
}

/**
 * Where one process gets its listening sockets: those systemd (or an upgrade) handed in where the
 * config names them, the rest made natively with the same options as the supervisor's (SO_REUSEPORT,
 * backlog, IPV6_V6ONLY, TCP_FASTOPEN, TCP_DEFER_ACCEPT on client-first protocols); without the
 * library, bound by Bun (said once).
 */
function oneProcessSockets(config: Config, inherited: Inherited | null): SocketSource {
  let handedIn = new Map<string, number>();
  if (inherited) {
    const set = new SocketSet(1, inherited);
    for (const s of set.adopt(config)) log.info("listening", { address: s.bound, configured: s.key, origin: s.origin });
    handedIn = set.fdsFor(0);
  }
  const why = socketsUnavailable();
  if (why === null) return { kind: "native", handedIn };
  log.warn("listening sockets bound by Bun, without TCP_DEFER_ACCEPT or TCP_FASTOPEN: no native library", { reason: why });
  return handedIn.size > 0 ? { kind: "inherited", fds: handedIn, bindOthers: true } : { kind: "bind" };
}

/**
 * React to signals and to changes of the config file from now on (a stop signal drains the service and
 * exits 0). Only once that is in place say "switchyard ready" and tell systemd (or the process this
 * one upgraded): a SIGHUP before its handler would kill the process, an edit before the watcher would
 * go unseen.
 */
function runUntilStopped(config: Config, inherited: Inherited | null, admin: Server<undefined> | null, shape: Record<string, unknown>, running: Running): void {
  const upgrade = new Upgrade();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn(`second ${signal}: closing every connection now`);
      running.kill();
      process.exit(0);
    }
    stopping = true;
    admin?.stop(true);
    await running.stop(signal, upgrade.handedOver);
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGHUP", () => void running.reloads.requested("SIGHUP", true));
  process.on("SIGUSR2", () => { if (!stopping) upgrade.start(workerCommand(), running.sockets(), () => void stop("upgrade")); });
  const file = configFile(config);
  if (file) watchConfigFile(file, () => void running.reloads.fileChanged());

  log.info("switchyard ready", { config: config.source, listeners: config.listeners.length, ...shape, pid: process.pid });
  if (inherited?.origin === "upgrade") announceUpgraded();
  else sdNotify("READY=1");
  startWatchdog();
}

/** The config file's path, or null when the configuration came from flags, the environment or the embedded default. */
function configFile(config: Config): string | null {
  return config.source.startsWith("/") ? config.source : null;
}

/**
 * One process: limits in the native table too (the same code path as workers), else in the heap.
 * Made before the first connection, so every connection counts in the same table.
 */
function useSharedLimits(): void {
  const made = limitsCreate();
  if (made.ok && limitsAttach(made.fd, 0) === null) useLimitTable(new SharedLimitTable());
}

/** Sockets passed by systemd (LISTEN_FDS) or by the switchyard this one upgrades; null when none. */
function inheritedSockets(): Inherited | null {
  const upgrade = process.env[UPGRADE_ENV];
  if (upgrade) return { origin: "upgrade", byKey: new Map(JSON.parse(upgrade) as [string, number[]][]) };
  const systemd = systemdSockets(process.env, process.pid);
  return systemd ? { origin: "systemd", byKey: systemd } : null;
}

/**
 * Start the admin API and the service (`start`: binds or takes the listening sockets). The admin
 * address is bound first, so one in use stops the start before any listener is bound. Except in an
 * upgrade: the old process holds the admin address until this one serves, so it comes after, retried
 * for ADMIN_BIND_RETRY_MS. Until `start` is done a reload is refused and GET /config shows `config`.
 */
async function adminAround(config: Config, inherited: Inherited | null, actions: AdminActions, start: () => Promise<void>): Promise<Server<undefined> | null> {
  const upgrading = inherited?.origin === "upgrade";
  let started = false;
  const guarded: AdminActions = {
    metrics: actions.metrics,
    config: () => (started ? actions.config() : config),
    reload: () => (started ? actions.reload() : Promise.resolve({ ok: false, errors: ["the service is still starting"] })),
  };
  const first = upgrading ? null : await startAdminWithRetry(config, guarded, false);
  try {
    await start();
  } catch (e) {
    first?.stop(true);
    throw e;
  }
  started = true;
  return upgrading ? startAdminWithRetry(config, guarded, true) : first;
}

async function startAdminWithRetry(config: Config, actions: AdminActions, retry: boolean): Promise<Server<undefined> | null> {
  const deadline = Date.now() + (retry ? ADMIN_BIND_RETRY_MS : 0);
  for (;;) {
    try {
      const admin = startAdmin(config, actions);
      if (admin) log.info("admin API listening", { address: admin.url.href });
      return admin;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE" && Date.now() <= deadline) {
        await Bun.sleep(100);
        continue;
      }
      throw listenError(config.admin!.listen, code === "EADDRINUSE" || code === "EACCES" ? code : (e as Error).message, "admin address");
    }
  }
}

/**
 * Reload when the config file changes. Editors save in bursts (truncate, write, rename), so changes
 * are gathered for 200 ms; the directory is watched, which also sees a file replaced by rename.
 */
function watchConfigFile(path: string, onChange: () => void): void {
  const name = basename(path);
  let timer: ReturnType<typeof setTimeout> | null = null;
  try {
    const watcher = watch(dirname(path), (_event, file) => {
      if (file !== name) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => { timer = null; onChange(); }, 200);
    });
    watcher.unref();
  } catch (e) {
    log.warn("cannot watch the config file; reload with SIGHUP or POST /reload", { file: path, error: (e as Error).message });
  }
}
