/**
 * Zero-downtime binary upgrade (SIGUSR2), nginx's way: start the binary found at the same path (the
 * operator has renamed the new one over it) with every listening socket inherited as extra fds, listed
 * in SWITCHYARD_UPGRADE_FDS. The new process takes them instead of binding, and once it serves it says
 * "upgraded" over the IPC channel (and MAINPID= to systemd); then the old one drains and exits. The
 * sockets never close, so no client is refused. If the new binary exits before serving, the old one
 * carries on.
 * @module
 */
import type { Subprocess } from "bun";
import { log } from "../log/logger.ts";
import { SYSTEMD_SOCKET_VARIABLES } from "../listen/systemd.ts";
import { sdNotify } from "./sd-notify.ts";

/** Environment of a new binary started by an upgrade: JSON [[socketKey, [fd, …]], …]. */
export const UPGRADE_ENV = "SWITCHYARD_UPGRADE_FDS";

/** Sockets to hand over: per socket key, its fds (one per worker slot, or one). */
export type HandedSockets = readonly (readonly [string, readonly number[]])[];

export class Upgrade {
  #child: Subprocess | null = null;
  #handedOver = false;

  /** Whether a new binary has taken over (then stop without STOPPING=1: the service goes on). */
  get handedOver(): boolean {
    return this.#handedOver;
  }

  /** Start `command` with `sockets` inherited; `onHandedOver` runs once it serves. */
  start(command: string[], sockets: HandedSockets, onHandedOver: () => void): void {
    if (this.#child) return void log.warn("SIGUSR2: an upgrade is already under way");
    const fds = sockets.flatMap(([, f]) => f);
    let next = 3;
    const table = sockets.map(([key, f]) => [key, f.map(() => next++)]);
    log.info("SIGUSR2: starting the new binary with the listening sockets", { command: command[0], sockets: fds.length });
    const env: Record<string, string | undefined> = { ...process.env, [UPGRADE_ENV]: JSON.stringify(table) };
    for (const v of [...SYSTEMD_SOCKET_VARIABLES, "WATCHDOG_PID"]) delete env[v];
    this.#child = Bun.spawn(command, {
      stdio: ["ignore", "inherit", "inherit", ...fds],
      env,
      ipc: (m: { t?: string; pid?: number }) => {
        if (m.t !== "upgraded" || this.#handedOver) return;
        log.info("upgrade: the new binary is serving; draining this one", { pid: m.pid });
        this.#handedOver = true;
        onHandedOver();
      },
      onExit: (_p, code, signal) => {
        if (this.#handedOver) return;
        this.#child = null;
        log.error("upgrade failed: the new binary exited before serving; this one carries on", { code, signal });
      },
    });
  }
}

/** In the new binary, once it serves: tell the old one and systemd. */
export function announceUpgraded(): void {
  process.send?.({ t: "upgraded", pid: process.pid });
  sdNotify(`MAINPID=${process.pid}\nREADY=1`);
}
