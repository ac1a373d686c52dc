/**
 * Messages between the supervisor and its workers, over Bun's IPC channel (Bun.spawn `ipc`,
 * process.send in the worker). Requests carry an id; the worker answers with the same id.
 * @module
 */
import type { MetricsSnapshot } from "./metrics.ts";
import type { ReloadResult } from "./service.ts";

export type ToWorker =
  /** Read the configuration again and apply it; `reopen`: reopen log files first (SIGHUP). */
  | { readonly t: "reload"; readonly id: number; readonly reopen: boolean }
  /** Reopen log files only (a SIGHUP whose reload was skipped as already done). */
  | { readonly t: "reopen" }
  | { readonly t: "scrape"; readonly id: number }
  /** Stop accepting, drain, exit 0 (the supervisor is replacing or stopping this worker). */
  | { readonly t: "stop" }
  /** A postgres CancelRequest another worker does not own the key of (hex message). */
  | { readonly t: "cancel"; readonly key: string; readonly message: string };

export type FromWorker =
  | { readonly t: "ready"; readonly pid: number }
  | { readonly t: "reloaded"; readonly id: number; readonly result: ReloadResult }
  /** id 0: unasked, the last snapshot of a worker about to exit. */
  | { readonly t: "metrics"; readonly id: number; readonly metrics: MetricsSnapshot }
  /** Told to stop by someone other than the supervisor (a signal): the supervisor starts a replacement now. */
  | { readonly t: "draining"; readonly pid: number }
  /** A postgres CancelRequest whose key this worker does not know: offer it to the others. */
  | { readonly t: "cancel"; readonly key: string; readonly message: string };

/** Environment variables the supervisor sets for a worker. */
export const WORKER_ENV = {
  /** The worker's slot number; its presence makes `serve` run as a worker. */
  slot: "SWITCHYARD_WORKER",
  /** JSON [[socketKey, fd], …]: the listening sockets it was given. */
  fds: "SWITCHYARD_WORKER_FDS",
  /** JSON {fd, column}: the gate's shared limits table (a memfd) and this worker's column in it. */
  limits: "SWITCHYARD_LIMITS",
} as const;
