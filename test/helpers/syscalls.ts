/**
 * Counts a process's data-moving syscalls with strace (every thread), to prove where bytes did NOT
 * go: relaying N bytes in userspace takes at least N/64 KiB reads (or recvs) and as many writes,
 * and relaying them with splice(2) takes at least N/1 MiB splice calls each way. /proc/PID/io
 * cannot say this: its rchar/wchar do not count socket send/recv.
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./proxy.ts";

/** Syscalls that copy bytes between the kernel and the process's memory. */
export const COPYING = ["read", "readv", "recvfrom", "recvmsg", "write", "writev", "sendto", "sendmsg"] as const;

export interface SyscallCounts {
  /** calls of the COPYING syscalls, summed */
  readonly copying: number;
  readonly splice: number;
  /** every syscall traced, by name */
  readonly byName: Readonly<Record<string, number>>;
}

/** Start counting now; `stop()` detaches strace and returns the counts since. */
export function countDataSyscalls(pid: number): { stop(): Promise<SyscallCounts> } {
  const out = join(tempDir(), "strace.txt");
  const names = [...COPYING, "splice"].join(",");
  const strace = Bun.spawn(["strace", "-f", "-c", "-o", out, "-e", `trace=${names}`, "-p", String(pid)], { stderr: "ignore" });
  return {
    async stop() {
      strace.kill("SIGINT");
      await strace.exited;
      // strace -c writes one row per syscall seen: "% time  seconds  usecs/call  calls  [errors]  name";
      // a process that made none gets no table at all.
      const byName: Record<string, number> = {};
      for (const line of readFileSync(out, "utf8").split("\n")) {
        const row = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)$/.exec(line);
        if (row && row[2] !== "total") byName[row[2]!] = Number(row[1]);
      }
      const copying = COPYING.reduce((sum, name) => sum + (byName[name] ?? 0), 0);
      return { copying, splice: byName.splice ?? 0, byName };
    },
  };
}
