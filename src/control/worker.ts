/**
 * A worker process: one {@link Service} listening on the supervisor's sockets, driven by the supervisor over IPC: reload, scrape, stop. A
 * signal from anyone else (an operator's SIGTERM to this pid) drains it too, after telling the
 * supervisor so a replacement starts at once. If the supervisor goes away, the worker drains and exits.
 * @module
 */
import type { Config } from "../config/types.ts";
import { log } from "../log/logger.ts";
import { relayEngine, relaySample } from "../relay/engine.ts";
import type { SocketSource } from "../listen/listeners.ts";
import type { FromWorker, ToWorker } from "./ipc.ts";
import { WORKER_ENV } from "./ipc.ts";
import { Service } from "./service.ts";
import { limitsAttach } from "../native/limits.ts";
import { SharedLimitTable } from "../protect/shared-table.ts";
import { useLimitTable } from "../protect/gate.ts";
import { cancelIfOwned, onUnknownCancelKey } from "../postgres/cancel.ts";
import { connIdsOfWorker } from "../proxy/conn-id.ts";

/** How often a worker checks that its supervisor is still its parent. */
const ORPHAN_CHECK_MS = 1000;
/** Time for the last IPC message to leave before the process exits. */
const LAST_WORDS_MS = 100;

export async function runWorker(config: Config, load: () => Config, env: Record<string, string | undefined>): Promise<void> {
  const slot = Number(env[WORKER_ENV.slot]);
  log.tag({ worker: slot });
  connIdsOfWorker(slot);
  const sockets: SocketSource = { kind: "inherited", fds: new Map(JSON.parse(env[WORKER_ENV.fds] ?? "[]") as [string, number][]) };
  attachLimits(env[WORKER_ENV.limits]);
  const service = new Service(load, sockets);
  await service.start(config);
  service.metrics.relayEngine = relayEngine(config);
  service.metrics.sampleRelay = relaySample;
  const send = (m: FromWorker) => process.send?.(m);
  onUnknownCancelKey((key, message) => send({ t: "cancel", key, message: Buffer.from(message).toString("hex") }));

  let stopping = false;
  const stop = async (why: string, tellSupervisor: boolean) => {
    if (stopping) return;
    stopping = true;
    if (tellSupervisor) send({ t: "draining", pid: process.pid });
    await service.drain(`worker ${slot}: ${why}`);
    send({ t: "metrics", id: 0, metrics: service.metrics.snapshot() }); // last words: the supervisor keeps the totals
    await Bun.sleep(LAST_WORDS_MS);
    process.exit(0);
  };
  process.on("message", (raw) => {
    const m = raw as ToWorker;
    if (m.t === "reload") {
      void (m.reopen ? service.hangup(`worker ${slot}`) : service.reload(`worker ${slot}`)).then((result) => send({ t: "reloaded", id: m.id, result }));
    } else if (m.t === "reopen") service.reopenLogs();
    else if (m.t === "scrape") send({ t: "metrics", id: m.id, metrics: service.metrics.snapshot() });
    else if (m.t === "stop") void stop("supervisor", false);
    else if (m.t === "cancel") cancelIfOwned(m.key, Buffer.from(m.message, "hex"));
  });
  process.on("SIGTERM", () => void stop("SIGTERM", true));
  // Ctrl-C reaches the whole process group: the supervisor decides (it stops every worker).
  process.on("SIGINT", () => {});
  // SIGHUP goes to the supervisor, which validates once and tells every worker.
  process.on("SIGHUP", () => {});
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) void stop("supervisor gone", false); }, ORPHAN_CHECK_MS).unref();
  log.debug("worker ready", { slot, pid: process.pid });
  send({ t: "ready", pid: process.pid });
}

/** Map the supervisor's shared limits table; without it this worker limits on its own (logged). */
function attachLimits(text: string | undefined): void {
  if (!text) return;
  const { fd, column } = JSON.parse(text) as { fd: number; column: number };
  const error = limitsAttach(fd, column);
  if (error) log.warn("cannot map the shared limits table: limits hold per worker", { error });
  else useLimitTable(new SharedLimitTable());
}
