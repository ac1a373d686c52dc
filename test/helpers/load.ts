/**
 * A steady stream of short connections (connect, "ping", the echo back, close) from the test process,
 * `concurrency` at a time, recording every failure (refused, reset, wrong answer, no answer in 10 s).
 * For "no client sees a refused connection" tests: start it, change the proxy, stop it, assert on
 * the failures.
 */
import type { Socket } from "bun";
import { readFileSync } from "node:fs";

export interface Load {
  /** Connections completed so far. */
  readonly ok: () => number;
  /** Stop starting new connections; resolves once the ones in flight end. */
  stop(): Promise<{ ok: number; failures: string[] }>;
}

const ANSWER_TIMEOUT_MS = 10_000;

export function steadyLoad(port: number, concurrency = 4): Load {
  let ok = 0;
  let running = true;
  const failures: string[] = [];
  const one = () => new Promise<void>((resolve) => {
    let got = "";
    let settled = false;
    const finish = (failure: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (failure) failures.push(failure);
      else ok++;
      resolve();
    };
    const timer = setTimeout(() => finish("no answer within 10 s"), ANSWER_TIMEOUT_MS);
    Bun.connect({
      hostname: "127.0.0.1", port,
      socket: {
        open(s: Socket<undefined>) { s.write("ping"); },
        data(s: Socket<undefined>, d: Uint8Array) { got += Buffer.from(d).toString(); if (got === "ping") { s.end(); finish(null); } },
        error(_s: unknown, e: Error) { finish(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`); },
        close() { finish(got === "ping" ? null : `closed after ${JSON.stringify(got)}`); },
        connectError(_s: unknown, e: Error) { finish(`connect ${(e as NodeJS.ErrnoException).code ?? e.message}`); },
      },
    }).catch((e) => finish(`connect ${e.code ?? e.message}`));
  });
  const loops = Array.from({ length: concurrency }, async () => { while (running) await one(); });
  return {
    ok: () => ok,
    async stop() {
      running = false;
      await Promise.all(loops);
      return { ok, failures };
    },
  };
}

/** The child pids of `pid` (its workers). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
