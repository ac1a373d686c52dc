/**
 * least-cpu's view of a route's upstreams: each unix-socket upstream with `pid` and `tid` is
 * watched by the native CPU sampler, and the balancer reads the latest sample per pick (a plain
 * non-blocking read). Without the native library least-cpu balances by least-conn, said once in
 * the log.
 * @module
 */
import type { UpstreamConfig } from "../config/types.ts";
import type { CpuOf } from "./balancer.ts";
import { log } from "../log/logger.ts";
import { nativeStatus } from "../native/index.ts";
import { cpuPermille, cpuWatch } from "../native/cpu.ts";

let warned = false;

/** The balancer's CpuOf for these upstreams, or null (then least-cpu is least-conn). */
export function cpuLoadOf(route: string, upstreams: readonly UpstreamConfig[]): CpuOf | null {
  const native = nativeStatus();
  if (!native.loaded) {
    if (!warned) log.warn("least-cpu: native CPU sampler unavailable, balancing by least-conn", { route, reason: native.reason });
    warned = true;
    return null;
  }
  const threads = upstreams.map((u) => (u.kind === "unix" && u.pid !== undefined && u.tid !== undefined && cpuWatch(u.pid, u.tid) ? { pid: u.pid, tid: u.tid } : null));
  return (i) => {
    const t = threads[i];
    return t ? cpuPermille(t.pid, t.tid) : null;
  };
}
