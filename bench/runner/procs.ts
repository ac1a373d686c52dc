/**
 * Child processes of the bench: every pid is tracked (and listed in a pid file that bench/run.sh's
 * trap reads as a backstop), stopped by pid, never by name. Also /proc readers (memory, children).
 * @module
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import type { Subprocess } from "bun";

const live = new Map<number, string>();
let pidFile: string | null = null;

export function setPidFile(path: string): void {
  pidFile = path;
  save();
}

function save(): void {
  if (pidFile) writeFileSync(pidFile, [...live].map(([pid, name]) => `${pid} ${name}\n`).join(""));
}

export function track(pid: number, name: string): void {
  live.set(pid, name);
  save();
}

export function untrack(pid: number): void {
  if (live.delete(pid)) save();
}

/** True while the process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Every descendant of `pid` (children, their children...), found from /proc/N/stat's ppid field. */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parentOf.set(Number(entry), Number(fields[1]));
    } catch { /* exited meanwhile */ }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const [child, parent] of parentOf) if (parent === p) { found.push(child); queue.push(child); }
  }
  return found;
}

/**
 * CPU time of a process and all its descendants so far, in clock ticks (USER_HZ, 100 per second):
 * utime + stime of /proc/N/stat, which cover every thread of N (the native engines' threads too).
 */
export function cpuTicksOf(rootPid: number): number {
  let ticks = 0;
  for (const pid of [rootPid, ...descendants(rootPid)]) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    } catch { /* exited meanwhile */ }
  }
  return ticks;
}

/**
 * anonKiB/fileKiB split rssKiB: anonymous memory (heaps, malloc) against file pages mapped in (code
 * run for the first time, e.g. the JIT's optimizing compiler inside a Bun binary, ~2 MB once).
 */
export interface Memory { pids: number[]; rssKiB: number; pssKiB: number; anonKiB: number; fileKiB: number }

/** VmRSS and Pss summed over a process and all its descendants (nginx master + workers...). */
export function memoryOf(rootPid: number): Memory {
  const pids = [rootPid, ...descendants(rootPid)];
  let rssKiB = 0;
  let pssKiB = 0;
  let anonKiB = 0;
  let fileKiB = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      rssKiB += Number(m?.[1] ?? 0);
      anonKiB += Number(/RssAnon:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      fileKiB += Number(/RssFile:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      const p = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
      pssKiB += Number(p?.[1] ?? 0);
    } catch { /* exited meanwhile */ }
  }
  return { pids, rssKiB, pssKiB, anonKiB, fileKiB };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig); } catch { /* already gone */ }
}

/** Last resort (exit, Ctrl-C, crash): SIGTERM every tracked pid and its children, SIGKILL what is left after 2 s. */
export function killAllSync(): void {
  const pids = new Set<number>();
  for (const pid of live.keys()) {
    if (!alive(pid)) continue;
    pids.add(pid);
    for (const d of descendants(pid)) pids.add(d);
  }
  for (const pid of pids) signal(pid, "SIGTERM");
  const deadline = Date.now() + 2000;
  while ([...pids].some(alive) && Date.now() < deadline) Bun.sleepSync(20);
  for (const pid of pids) if (alive(pid)) signal(pid, "SIGKILL");
  live.clear();
  save();
}

/** A long-running child (backend, proxy, hold client) whose stdout and stderr go to files. */
export class Child {
  readonly proc: Subprocess;
  readonly pid: number;
  private adopted: number[] = [];

  constructor(readonly name: string, cmd: string[], readonly logBase: string, env?: Record<string, string>) {
    this.proc = Bun.spawn(cmd, {
      stdin: "ignore",
      stdout: Bun.file(`${logBase}.out`),
      stderr: Bun.file(`${logBase}.err`),
      env: env ?? (process.env as Record<string, string>),
    });
    this.pid = this.proc.pid;
    track(this.pid, name);
  }

  out(): string { return readText(`${this.logBase}.out`); }
  err(): string { return readText(`${this.logBase}.err`); }
  exited(): boolean { return this.proc.exitCode !== null || this.proc.signalCode !== null; }

  /** Polls stdout+stderr for `re`; throws if the process exits first or after `ms`. */
  async waitFor(re: RegExp, ms = 10_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.out()) ?? re.exec(this.err());
      if (m) return m;
      if (this.exited()) throw new Error(`${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}) before printing ${re}: ${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${re} within ${ms} ms: ${this.tail()}`);
      await Bun.sleep(20);
    }
  }

  /** Track the children it forked (nginx workers), so they are killed by pid too. */
  adoptChildren(): void {
    for (const d of descendants(this.pid)) { this.adopted.push(d); track(d, `${this.name} child`); }
  }

  tail(): string {
    return (this.err() + this.out()).trim().split("\n").slice(-5).join(" | ");
  }

  /** SIGTERM, wait up to `ms`, then SIGKILL it and every child. */
  async stop(ms = 5000): Promise<void> {
    const kids = [...new Set([...this.adopted, ...(alive(this.pid) ? descendants(this.pid) : [])])];
    if (!this.exited()) signal(this.pid, "SIGTERM");
    const timer = setTimeout(() => { for (const p of [this.pid, ...kids]) if (alive(p)) signal(p, "SIGKILL"); }, ms);
    await this.proc.exited;
    clearTimeout(timer);
    const deadline = Date.now() + ms;
    while (kids.some(alive) && Date.now() < deadline) await Bun.sleep(20);
    for (const p of kids) if (alive(p)) signal(p, "SIGKILL");
    for (const p of [this.pid, ...kids]) untrack(p);
  }
}

function readText(path: string): string {
  try { return readFileSync(path, "utf8"); } catch { return ""; }
}

export interface Finished { code: number; stdout: string; stderr: string }

/** Runs a command to completion (a load generator run), killing it after `timeoutMs`. */
export async function run(name: string, cmd: string[], timeoutMs: number): Promise<Finished> {
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  track(proc.pid, name);
  const timer = setTimeout(() => signal(proc.pid, "SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited,
  ]);
  clearTimeout(timer);
  untrack(proc.pid);
  return { code, stdout, stderr };
}

/** A port that was free a moment ago (the kernel picked it). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** Resolves once a TCP connect to host:port succeeds; throws after `ms` or when `child` exits. */
export async function waitPort(address: string, ms = 10_000, child?: Child): Promise<void> {
  const i = address.lastIndexOf(":");
  const host = address.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(address.slice(i + 1));
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host, port });
      s.once("connect", () => { s.destroy(); resolve(true); });
      s.once("error", () => { s.destroy(); resolve(false); });
    });
    if (ok) return;
    if (child?.exited()) throw new Error(`${child.name} exited (${child.proc.exitCode}) before listening: ${child.tail()}`);
    if (Date.now() > deadline) throw new Error(`nothing listening on ${address} after ${ms} ms${child ? `: ${child.tail()}` : ""}`);
    await Bun.sleep(25);
  }
}

function cpuTimes(): { idle: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { idle: (f[3] ?? 0) + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) };
}

/** Share of all CPUs idle over the next `ms` (from /proc/stat), in percent. */
export async function hostIdle(ms = 300): Promise<number> {
  const a = cpuTimes();
  await Bun.sleep(ms);
  const b = cpuTimes();
  return b.total === a.total ? 100 : (100 * (b.idle - a.idle)) / (b.total - a.total);
}

/**
 * Waits (up to `maxMs`) until the host is at least `minIdle` % idle, so that a run does not start while
 * something else (a build, another test) is using the CPUs. Returns the last idle figure.
 */
export async function waitQuiet(minIdle: number, maxMs: number): Promise<number> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const idle = await hostIdle();
    if (idle >= minIdle || Date.now() >= deadline) return idle;
    await Bun.sleep(700);
  }
}

/**
 * Counts the system calls and context switches of a process tree (every thread of every process
 * under `rootPid` at the start) with `perf stat`, from now until stop(). Null where perf is missing
 * or refused (perf_event_paranoid). perf's tracepoint counting costs the traced process a little: a
 * run with it measures syscalls, not speed.
 */
export function countSyscalls(rootPid: number, out: string): { stop(): Promise<{ syscalls: number; contextSwitches: number } | null> } | null {
  if (!Bun.which("perf")) return null;
  const pids = [rootPid, ...descendants(rootPid)].join(",");
  const p = Bun.spawn(["perf", "stat", "-x", ",", "-o", out, "-e", "raw_syscalls:sys_enter,context-switches", "-p", pids], { stdout: "ignore", stderr: "pipe" });
  track(p.pid, "perf stat");
  return {
    async stop() {
      p.kill("SIGINT");
      await p.exited;
      untrack(p.pid);
      let text = "";
      try { text = readFileSync(out, "utf8"); } catch { return null; }
      const count = (event: string) => Number(text.split("\n").find((l) => l.includes(event))?.split(",")[0]);
      const syscalls = count("raw_syscalls:sys_enter");
      const contextSwitches = count("context-switches");
      return Number.isFinite(syscalls) ? { syscalls, contextSwitches } : null;
    },
  };
}
