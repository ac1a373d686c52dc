/** Facts about the machine and the tools' versions, recorded with every results file. @module */
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import type { Ctx } from "./systems.ts";

function sh(cmd: string[]): string {
  try {
    const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    return (p.stdout.toString() + p.stderr.toString()).trim();
  } catch (e) {
    return `unavailable (${(e as Error).message})`;
  }
}

function file(path: string): string {
  try { return readFileSync(path, "utf8").trim(); } catch { return "?"; }
}

export function machineFacts(ctx: Ctx): Record<string, string> {
  const sysctl = (k: string) => file(`/proc/sys/${k.replace(/\./g, "/")}`).replace(/\s+/g, " ");
  const osName = /PRETTY_NAME="?([^"\n]+)/.exec(file("/etc/os-release"))?.[1] ?? "?";
  const nofile = /Max open files\s+(\d+)\s+(\d+)/.exec(file("/proc/self/limits"));
  return {
    nproc: String(ctx.nproc),
    cpu: cpus()[0]?.model ?? "?",
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: osName,
    kernel: sh(["uname", "-r"]),
    "load average at start": file("/proc/loadavg"),
    "open files (soft/hard)": nofile ? `${nofile[1]}/${nofile[2]}` : "?",
    switchyard: sh([ctx.switchyard, "version"]).split("\n").slice(0, 3).join("; "),
    bun: `${Bun.version} (runner)`,
    haproxy: sh(["haproxy", "-v"]).split("\n")[0] ?? "?",
    nginx: sh(["nginx", "-v"]),
    wrk: sh(["wrk", "--version"]).split("\n")[0] ?? "?",
    hyperfine: sh(["hyperfine", "--version"]),
    zig: sh([`${ctx.root}/tools/zig/ziglang/zig`, "version"]),
    ...Object.fromEntries([
      "net.core.somaxconn", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_fin_timeout",
      "net.core.rmem_max", "net.core.wmem_max", "net.core.netdev_max_backlog", "fs.file-max",
      // What shapes bulk: socket buffer autotuning, pacing (bbr without fq paces with a timer per
      // sender), the splice engines' pipe size limit.
      "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_congestion_control", "net.core.default_qdisc", "fs.pipe-max-size",
    ].map((k) => [k, sysctl(k)])),
  };
}
