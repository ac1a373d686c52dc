/**
 * Which relay engine this process uses, decided once at start and logged once with the reason for
 * any fallback:
 *
 *   relay sockmap: sockmap (kernel, BPF) ─► splice (native threads) ─► userspace (Bun sockets)
 *   relay auto:    splice ─► sockmap ─► userspace
 *   relay splice:  splice ─► userspace
 *
 * `relay: sockmap` / `--relay sockmap` / TCP_SOCKMAP_ENABLED use sockmap where the host allows it
 * (native library loaded, CAP_BPF and CAP_NET_ADMIN, a kernel that accepts the program;
 * SWITCHYARD_NATIVE_SOCKMAP=off simulates a refusal), else splice, else userspace. `auto` tries
 * splice first, then sockmap (AUTO_ORDER says why). With sockmap the splice engine is started too:
 * a pair sockmap cannot take (a unix-socket side) goes to splice.
 * @module
 */
import type { Config } from "../config/types.ts";
import { log } from "../log/logger.ts";
import { spliceStart } from "../native/index.ts";
import { sockmapStart } from "../native/sockmap.ts";

export type Engine = "sockmap" | "splice" | "userspace";

/** Splice engine threads: the relay work is syscalls, one thread keeps up with a core of JS. */
const SPLICE_THREADS = 1;

let engine: Engine | null = null;
let spliceReady = false;

/** Decide once which engine this process uses and log it with the reason. */
export function relayEngine(config: Config): Engine {
  if (engine) return engine;
  const configured = config.relay;
  if (configured === "userspace") {
    log.info("relay engine: userspace", { configured });
    return (engine = "userspace");
  }
  const spliceWhy = spliceStart(SPLICE_THREADS);
  spliceReady = spliceWhy === null;
  // auto asks for sockmap only where splice cannot run (AUTO_ORDER says why).
  const sockmapWhy = configured === "splice" || (configured === "auto" && spliceReady) ? null : sockmapStart();
  const handover = configured === "auto" ? `after ${KERNEL_AUTO_AFTER_BYTES / 1024} KiB` : "at connect";
  const warn = (msg: string, fields: Record<string, unknown>) => (configured === "auto" ? log.info(msg, fields) : log.warn(msg, fields));
  if (configured === "sockmap" && sockmapWhy === null) {
    log.info("relay engine: sockmap", { configured, handover, unixSockets: spliceReady ? "splice" : "userspace" });
    return (engine = "sockmap");
  }
  if (spliceReady) {
    if (configured === "sockmap") warn("relay engine: splice (sockmap unavailable)", { configured, reason: sockmapWhy, handover });
    else log.info("relay engine: splice", { configured, threads: SPLICE_THREADS, handover });
    return (engine = "splice");
  }
  if (configured === "auto" && sockmapWhy === null) {
    log.info("relay engine: sockmap (splice unavailable)", { configured, handover, reason: spliceWhy });
    return (engine = "sockmap");
  }
  if (configured === "splice") warn("relay engine: userspace (splice unavailable)", { configured, reason: spliceWhy });
  else warn("relay engine: userspace (sockmap and splice unavailable)", { configured, reason: spliceWhy, sockmap: sockmapWhy });
  return (engine = "userspace");
}

/**
 * Why `auto` prefers splice to sockmap: measured on this project's bench host (kernel 6.18,
 * loopback, one bulk stream, bench/loadgen, 5 s): splice 2.75 GB/s at 0.60 host CPU-s per GB,
 * sockmap 1.25 GB/s at 0.82 CPU-s per GB (direct: 4.50 GB/s, 0.34). The kernel sends redirected
 * segments from a kworker's backlog, which costs latency per batch on loopback. sockmap stays
 * available by name (`relay: sockmap`, TCP_SOCKMAP_ENABLED) and is auto's choice where splice is
 * refused. Re-measure on other kernels and NICs before changing the order.
 */
export const AUTO_ORDER = ["splice", "sockmap", "userspace"] as const;

/** Whether the splice engine runs (also as the fallback for pairs sockmap cannot take). */
export function spliceRunning(): boolean {
  return spliceReady;
}

/**
 * `auto` hands a connection to the kernel engine once it has moved this many bytes: short
 * exchanges (request/response, idle pools) stay in userspace, where a connection costs 2 fds and
 * no handover, and bulk streams go to the kernel, where they cost less CPU per byte. HAProxy's
 * splice-auto makes the same trade.
 */
export const KERNEL_AUTO_AFTER_BYTES = 256 * 1024;
