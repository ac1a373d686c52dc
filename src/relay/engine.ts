/**
 * Which relay engine this process uses, decided once at start and logged once with the reason for
 * any fallback:
 *
 *   relay sockmap: sockmap (kernel, BPF) ─► splice (native threads) ─► userspace (Bun sockets)
 *   relay uring:   uring (io_uring, one native thread) ─► splice ─► userspace
 *   relay auto:    uring for connections accepted natively, splice for the rest ─► userspace
 *   relay splice:  splice ─► userspace
 *
 * `relay: sockmap` / `--relay sockmap` / TCP_SOCKMAP_ENABLED use sockmap where the host allows it
 * (native library loaded, CAP_BPF and CAP_NET_ADMIN, a kernel that accepts the program;
 * SWITCHYARD_NATIVE_SOCKMAP=off simulates a refusal), else splice, else userspace. With sockmap
 * the splice engine is started too: a pair sockmap cannot take (a unix-socket side) goes to splice.
 *
 * `relay: uring` / `--relay uring` use the io_uring engine (native/src/uring.zig) where the kernel
 * passes its probe (io_uring_setup allowed, provided-buffer rings, multishot receive: Linux 6.0;
 * SWITCHYARD_NATIVE_URING=off simulates a refusal), else splice, else userspace, the log saying why.
 *
 * `auto` (the default) starts both the uring engine and splice where they work, and gives each the
 * traffic it was measured fastest for (README, Relay engines; bench/results/2026-12-03-uring-auto.md):
 * - a tcp listener whose routes need no bytes is accepted natively by the uring engine
 *   (src/listen/native-accept.ts), which dials and relays from the first byte: request/response
 *   costs under one system call per request, an idle pair 2 fds and no Bun socket;
 * - every other connection (sniffing, TLS passthrough, protocols; native accept refused) starts in
 *   userspace and moves to splice once it has moved KERNEL_AUTO_AFTER_BYTES: splice moves bulk
 *   with the least CPU of the proxy, since uring copies each byte through its buffers.
 * - a natively accepted pair that turns out to be a stream (one direction has moved 1 MiB with
 *   nothing coming back) is handed by the uring engine to splice, its own fds and byte counts with
 *   it (native/src/uring.zig, "Streams"): bulk then costs what it costs on splice, request/response
 *   never moves (bench/results/2026-12-04-uring-streams.md).
 * Without io_uring (kernel, io_uring_disabled, SWITCHYARD_NATIVE_URING=off) auto is splice ─►
 * userspace as before, and the start log says why uring is not used.
 *
 * Why `auto` never takes sockmap, though the kernel relays its bytes without a syscall:
 * - the kernel gives a redirected stream no backpressure, and the only safe bound
 *   (native/src/sockmap.zig) hands a pair whose reader falls behind back to userspace, or resets
 *   it when both its directions are busy: auto hands a connection over because it is busy;
 * - it is not faster in bulk: one loopback stream through sockmap moved 1.15 GB/s against splice's
 *   1.24 (bench/results/2026-11-30-1239-full.json; 1.29 against 3.05 on the host of
 *   2026-11-24-0609), the kernel sending redirected segments from a worker's backlog.
 * sockmap stays available by name (`relay: sockmap`, TCP_SOCKMAP_ENABLED), for traffic whose
 * readers keep up, e.g. request/response between services.
 * @module
 */
import type { Config } from "../config/types.ts";
import { log } from "../log/logger.ts";
import { spliceActive, spliceStart } from "../native/index.ts";
import { sockmapActive, sockmapStart } from "../native/sockmap.ts";
import { uringActive, uringStart, uringStreamsHanded, uringStreamsToSplice } from "../native/uring.ts";
import type { RelaySample } from "../control/metrics.ts";

export type Engine = "sockmap" | "uring" | "splice" | "userspace";

/** Splice engine threads: the relay work is syscalls, one thread keeps up with a core of JS. */
const SPLICE_THREADS = 1;

let engine: Engine | null = null;
let spliceReady = false;
let uringReady = false;

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
  const sockmapWhy = configured === "sockmap" ? sockmapStart() : null;
  const uringWanted = configured === "uring" || configured === "auto";
  const uringWhy = uringWanted ? uringStart() : null;
  uringReady = uringWanted && uringWhy === null;
  const nativeAccept = uringReady ? "uring" : `off (${uringWhy})`;
  const streams = configured === "auto" && uringReady ? streamsToSplice(spliceReady) : undefined;
  const handover = configured === "auto" ? `after ${KERNEL_AUTO_AFTER_BYTES / 1024} KiB` : "at connect";
  const warn = (msg: string, fields: Record<string, unknown>) => (configured === "auto" ? log.info(msg, fields) : log.warn(msg, fields));
  if (configured === "sockmap" && sockmapWhy === null) {
    log.info("relay engine: sockmap", { configured, handover, unixSockets: spliceReady ? "splice" : "userspace" });
    return (engine = "sockmap");
  }
  if (configured === "uring") {
    if (uringWhy === null) {
      log.info("relay engine: uring", { configured, handover });
      return (engine = "uring");
    }
    if (spliceReady) warn("relay engine: splice (uring unavailable)", { configured, reason: uringWhy, handover });
    else warn("relay engine: userspace (uring and splice unavailable)", { configured, reason: uringWhy, splice: spliceWhy });
    return (engine = spliceReady ? "splice" : "userspace");
  }
  if (spliceReady) {
    if (configured === "sockmap") warn("relay engine: splice (sockmap unavailable)", { configured, reason: sockmapWhy, handover });
    else if (configured === "auto") log.info("relay engine: splice", { configured, threads: SPLICE_THREADS, handover, nativeAccept, ...(streams && { streams }) });
    else log.info("relay engine: splice", { configured, threads: SPLICE_THREADS, handover });
    return (engine = "splice");
  }
  if (configured === "sockmap") warn("relay engine: userspace (sockmap and splice unavailable)", { configured, reason: spliceWhy, sockmap: sockmapWhy });
  else if (configured === "auto") warn("relay engine: userspace (splice unavailable)", { configured, reason: spliceWhy, nativeAccept });
  else warn("relay engine: userspace (splice unavailable)", { configured, reason: spliceWhy });
  return (engine = "userspace");
}

/** relay auto: the uring engine's streams go to splice; what the start log says of them. */
function streamsToSplice(spliceReady: boolean): string {
  if (!spliceReady) return "uring (splice unavailable)";
  const why = uringStreamsToSplice();
  return why === null ? "splice after 1 MiB one way" : `uring (${why})`;
}

/**
 * Whether the uring engine runs: with `relay: uring` it is the engine; with `auto` it accepts,
 * dials and relays the connections of listeners that need no bytes (src/listen/native-accept.ts).
 */
export function uringRunning(): boolean {
  return uringReady;
}

/** The kernel engines' pairs now (those that run), and the streams uring handed to splice: for the metrics. */
export function relaySample(): RelaySample {
  const pairs: [string, number][] = [];
  if (uringReady) pairs.push(["uring", uringActive()]);
  if (spliceReady) pairs.push(["splice", spliceActive()]);
  if (engine === "sockmap") pairs.push(["sockmap", sockmapActive()]);
  return { pairs, streamsToSplice: uringStreamsHanded() };
}

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
