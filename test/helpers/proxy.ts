/**
 * Runs the compiled binary (dist/switchyard, built by `npm test` before the tests) as a child
 * process on loopback, waits until it is ready and reads back the addresses it bound.
 * Every test stops what it started, by pid.
 */
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const BINARY = resolve(import.meta.dir, "../../dist/switchyard");

export interface RunningProxy {
  readonly pid: number;
  readonly proc: Subprocess;
  /** Bound addresses in listen order, e.g. "127.0.0.1:41234". */
  readonly addresses: string[];
  /** Port of the first inet address. */
  readonly port: number;
  /** Everything the proxy wrote to stderr (logs) so far. */
  stderr(): string;
  /** Access-log records written to stdout so far. */
  accessLog(): Record<string, unknown>[];
  /** Resolves when stderr contains `text` (polls), rejects after `ms`. */
  waitForLog(text: string | RegExp, ms?: number): Promise<void>;
  stop(): Promise<number>;
}

export function tempDir(prefix = "switchyard-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Write a config file into a fresh temp dir and return its path. */
export function writeConfig(config: unknown, dir = tempDir()): string {
  const path = join(dir, "switchyard.jsonc");
  writeFileSync(path, typeof config === "string" ? config : JSON.stringify(config, null, 2));
  return path;
}

export async function startProxy(args: string[], options: { env?: Record<string, string>; cwd?: string; binary?: string } = {}): Promise<RunningProxy> {
  const proc = Bun.spawn([options.binary ?? BINARY, ...args], {
    env: options.env ?? { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    cwd: options.cwd,
    stdout: "pipe",
    stderr: "pipe",
  });
  let err = "";
  let out = "";
  void (async () => { for await (const c of proc.stderr as ReadableStream<Uint8Array>) err += new TextDecoder().decode(c); })();
  void (async () => { for await (const c of proc.stdout as ReadableStream<Uint8Array>) out += new TextDecoder().decode(c); })();
  const waitForLog = async (text: string | RegExp, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!(typeof text === "string" ? err.includes(text) : text.test(err))) {
      if (Date.now() > deadline) throw new Error(`proxy did not log ${text} within ${ms} ms; stderr:\n${err}`);
      if (proc.exitCode !== null) throw new Error(`proxy exited with ${proc.exitCode} before logging ${text}; stderr:\n${err}`);
      await Bun.sleep(20);
    }
  };
  await waitForLog("switchyard ready");
  const addresses = [...err.matchAll(/(?<!admin API )listening address=(\S+)/g)].map((m) => m[1]!);
  const first = addresses.find((a) => !a.startsWith("unix:")) ?? "";
  return {
    pid: proc.pid, proc, addresses,
    port: Number(first.slice(first.lastIndexOf(":") + 1)),
    stderr: () => err,
    // Complete lines only: a pipe read can end in the middle of a record.
    accessLog: () => out.slice(0, out.lastIndexOf("\n") + 1).split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)),
    waitForLog,
    async stop() {
      if (proc.exitCode === null) process.kill(proc.pid, "SIGTERM");
      const timer = setTimeout(() => proc.exitCode === null && process.kill(proc.pid, "SIGKILL"), 10_000);
      const code = await proc.exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Run the binary to completion (validate, version, a refused serve). */
export async function runBinary(args: string[], env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" }) {
  const proc = Bun.spawn([BINARY, ...args], { env, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Resident memory of a process, in bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Poll `cond` until true or throw after `ms`. */
export async function eventually(cond: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

export async function metricsJson(adminPort: number): Promise<any> {
  return (await fetch(`http://127.0.0.1:${adminPort}/metrics.json`)).json();
}
