/**
 * CPU use of upstream threads (native/src/cpu.zig): a native thread reads /proc/PID/task/TID/stat
 * every 250 ms; `cpuPermille` is a plain non-blocking read of the latest sample.
 * @module
 */
import { nativeLib } from "./index.ts";

/** Start sampling a thread. Returns false when the library is not loaded or the table is full. */
export function cpuWatch(pid: number, tid: number): boolean {
  const lib = nativeLib();
  return lib !== null && lib.symbols.sy_cpu_watch(pid, tid) >= 0;
}

export function cpuUnwatch(pid: number, tid: number): void {
  nativeLib()?.symbols.sy_cpu_unwatch(pid, tid);
}

/** Share of one core in permille over the last 250 ms, or null: no sample yet, thread gone, not watched. */
export function cpuPermille(pid: number, tid: number): number | null {
  const lib = nativeLib();
  if (!lib) return null;
  const v = lib.symbols.sy_cpu_permille(pid, tid);
  return v >= 0 ? v : null;
}
