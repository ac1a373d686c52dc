/**
 * Connection numbers. One counter per process, not per configuration: a reload must not hand out
 * a number a connection opened before it still has (the kernel engines and their completion
 * records know a connection by it, src/relay/handover.ts). The access log's `id` adds the
 * worker's number when there are workers, since every worker counts from 1: `2-417` is the 417th
 * connection of worker 2; one process writes `417`. A worker that replaces a crashed one, or a
 * process started by an upgrade, counts from 1 again.
 * @module
 */

let next = 1;
let worker: number | null = null;

export function nextConnId(): number {
  return next++;
}

/** This process is worker `slot` of a supervisor (its log lines say `worker=slot`). */
export function connIdsOfWorker(slot: number): void {
  worker = slot;
}

/** The access log's id of connection `n` of this process (the resolver hooks get `n` itself). */
export function connLogId(n: number): string {
  return worker === null ? String(n) : `${worker}-${n}`;
}
