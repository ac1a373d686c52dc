/**
 * systemd's readiness protocol (sd_notify(3)) for Type=notify units: READY=1 once serving,
 * RELOADING=1 with MONOTONIC_USEC around a reload, STOPPING=1 when draining, WATCHDOG=1 every half
 * WatchdogSec, MAINPID= when a binary upgrade hands the service to a new process. A unix datagram to
 * $NOTIFY_SOCKET, sent through the native library (Bun has no unix datagram socket); without it the
 * messages are skipped with one log line. Nothing happens when NOTIFY_SOCKET is unset.
 * @module
 */
import { log } from "../log/logger.ts";
import { monotonicUsec, sendDatagram } from "../native/sockets.ts";

let warned = false;

export function sdNotify(message: string, env: Record<string, string | undefined> = process.env): void {
  const path = env.NOTIFY_SOCKET;
  if (!path) return;
  const error = sendDatagram(path, message);
  if (error && !warned) {
    warned = true;
    log.warn("cannot notify systemd", { socket: path, error });
  }
}

/** RELOADING=1 with the time it started on CLOCK_MONOTONIC (systemd 253+ wants both for Type=notify-reload). */
export function notifyReloading(): void {
  const usec = monotonicUsec();
  sdNotify(usec === null ? "RELOADING=1" : `RELOADING=1\nMONOTONIC_USEC=${usec}`);
}

/**
 * Ping the watchdog every half WATCHDOG_USEC (when it is meant for this process). The ping runs on the
 * event loop, so a stuck loop stops it and systemd restarts the service.
 */
export function startWatchdog(env: Record<string, string | undefined> = process.env): void {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.NOTIFY_SOCKET || !Number.isFinite(usec) || usec <= 0) return;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid) return;
  setInterval(() => sdNotify("WATCHDOG=1", env), Math.max(1, Math.floor(usec / 2000))).unref();
  log.info("systemd watchdog on", { intervalMs: Math.floor(usec / 2000) });
}
