/**
 * `switchyard serve`: start the service, then react to signals: SIGHUP reopens log files and
 * reloads the configuration (so does a change of the config file), SIGTERM/SIGINT drain and exit 0
 * (a second one closes at once).
 * One process for now (workers are a later step).
 * @module
 */
import { watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { Config } from "../config/types.ts";
import { log } from "../log/logger.ts";
import { startAdmin } from "../control/admin.ts";
import { Service } from "../control/service.ts";
import { nativeStatus } from "../native/index.ts";
import { relayEngine } from "../relay/engine.ts";

export async function serve(config: Config, load: () => Config): Promise<void> {
  const native = nativeStatus();
  if (native.loaded) log.info("native library loaded", { abi: native.abi });
  else log.warn("native library unavailable, using the userspace relay only", { reason: native.reason });

  const service = new Service(load);
  await service.start(config);
  // The admin listener and the relay engine are fixed for the life of the process.
  const admin = startAdmin(config, service.metrics, { config: () => service.current.config, reload: () => service.reload("POST /reload") });
  if (admin) log.info("admin API listening", { address: admin.url.href });
  const engine = relayEngine(config);
  log.info("switchyard ready", { config: config.source, listeners: config.listeners.length, relay: engine });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn(`second ${signal}: closing every connection now`);
      service.closeAll("shutdown");
      process.exit(0);
    }
    stopping = true;
    admin?.stop(true);
    await service.drain(signal);
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGHUP", () => void service.hangup());
  if (config.source.startsWith("/")) watchConfigFile(config.source, () => void service.reload("config file changed"));
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
