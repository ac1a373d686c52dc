/**
 * The supervisor: holds the listening sockets ({@link SocketSet}), runs N workers of the same binary
 * on them, and is the control plane: reload (validated here first, then every worker reloads), metrics
 * (scraped from every worker over IPC and summed), graceful stop; it hands its sockets to a binary
 * upgrade (src/control/upgrade.ts).
 *
 * - A worker that exits unasked is replaced after a backoff (100 ms doubling to 10 s; reset once a
 *   worker has lived 10 s). Its sockets stay open here, so connections queued on them wait for the
 *   replacement instead of being refused.
 * - A worker told to stop by someone else (SIGTERM to its pid) says so first; its replacement starts at
 *   once, on the same sockets, while it drains.
 * - A reload that keeps the same sockets is applied in place by every worker (established connections
 *   untouched). One that adds or removes addresses opens the new sockets here, starts a new set of
 *   workers (given only the new configuration's sockets), drains the old ones (nginx's way) and
 *   closes the sockets of removed addresses.
 * - Each worker counts its open connections in its own column of the shared limits table; when it
 *   exits (a crash too) the supervisor clears that column, so the limits get its places back.
 * - Counters of workers that have exited are kept (a worker sends its last snapshot before it exits),
 *   so totals do not go backwards; a worker that crashes loses what it counted since the last scrape.
 * @module
 */
import type { Subprocess } from "bun";
import { availableParallelism } from "node:os";
import type { Config } from "../config/types.ts";
import { ConfigError } from "../config/load.ts";
import { log } from "../log/logger.ts";
import { SocketSet, type Inherited } from "../listen/socket-set.ts";
import { socketKey } from "../listen/socket-key.ts";
import { SYSTEMD_SOCKET_VARIABLES } from "../listen/systemd.ts";
import type { FromWorker, ToWorker } from "./ipc.ts";
import { WORKER_ENV } from "./ipc.ts";
import { Metrics, type MetricsSnapshot } from "./metrics.ts";
import type { ReloadResult } from "./service.ts";
import { notifyReloading, sdNotify } from "./sd-notify.ts";
import { limitsClearColumn, limitsCreate } from "../native/limits.ts";
import { UPGRADE_ENV, type HandedSockets } from "./upgrade.ts";

const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** A worker that lived this long resets its slot's backoff. */
const HEALTHY_AFTER_MS = 10_000;
/** How long a new worker may take to load its configuration and listen. */
const READY_TIMEOUT_MS = 30_000;
/** How long a worker may take to answer a reload or a scrape. */
const ASK_TIMEOUT_MS = 10_000;
/** Extra time after drainTimeoutMs before a worker that has not exited is killed. */
const STOP_GRACE_MS = 5_000;
/** Worker columns of the shared limits table (COLUMNS in native/src/limits.zig). */
const LIMIT_COLUMNS = 16;


interface Worker {
  readonly slot: number;
  /** Its column in the shared limits table, or null without one. */
  readonly column: number | null;
  readonly proc: Subprocess<"ignore", "inherit", "inherit">;
  readonly startedAt: number;
  ready: boolean;
  /** Being replaced or stopped: its exit is expected and no replacement follows. */
  retiring: boolean;
  /** Called once: true when it listens, false if it exits first. */
  onReady: ((ok: boolean) => void) | null;
}

type Pending = { readonly replies: unknown[]; readonly expected: number; readonly done: () => void };

export class Supervisor {
  /** The supervisor's own counts (reloads) and, summed in, what exited workers counted. */
  readonly #departed = new Metrics();
  readonly #workers = new Set<Worker>();
  readonly #slots: (Worker | null)[];
  readonly #failures: number[];
  readonly #pending = new Map<number, Pending>();
  readonly #sockets: SocketSet;
  #nextId = 1;
  #reloads: Promise<unknown> = Promise.resolve();
  /** The gate's shared table (memfd), or null: each worker then limits on its own. */
  readonly #limitsFd: number | null;
  /** Live workers counting in each column of the shared table. */
  readonly #columnUsers = new Array<number>(LIMIT_COLUMNS).fill(0);
  #stopping = false;

  constructor(readonly load: () => Config, public config: Config, readonly count: number, inherited: Inherited | null) {
    this.#slots = new Array(count).fill(null);
    this.#failures = new Array(count).fill(0);
    this.#sockets = new SocketSet(count, inherited);
    const limits = limitsCreate();
    this.#limitsFd = limits.ok ? limits.fd : null;
    if (!limits.ok) log.warn("no shared limits table: protection limits hold per worker, not across workers", { error: limits.error });
  }

  get reloads(): Metrics["reloads"] {
    return this.#departed.reloads;
  }

  /** Open the sockets, start every worker, resolve once all of them listen. */
  async start(): Promise<void> {
    for (const s of this.#sockets.open(this.config)) log.info("listening", { address: s.bound, configured: s.key, sockets: s.fds.length, origin: s.origin });
    const started = this.#slots.map((_, slot) => this.#spawn(slot));
    try {
      await this.#whenReady(started);
    } catch (e) {
      this.#stopping = true;
      this.kill();
      throw e;
    }
  }

  /**
   * Validate here, then have every worker apply it; never throws. Reloads run one at a time (a file
   * save and a POST /reload often arrive together); none starts once the service is stopping.
   */
  reload(trigger: string, reopen = false): Promise<ReloadResult> {
    const run = this.#reloads.then(() => this.#reloadNow(trigger, reopen));
    this.#reloads = run;
    return run;
  }

  /** Every worker reopens its log files (draining ones write theirs too). */
  reopenLogs(): void {
    for (const w of this.#workers) this.#send(w, { t: "reopen" });
  }

  async #reloadNow(trigger: string, reopen: boolean): Promise<ReloadResult> {
    if (this.#stopping) return { ok: false, errors: ["the service is stopping"] };
    notifyReloading();
    try {
      const result = await this.#reload(reopen);
      if (result.ok) this.#departed.reloads.ok++;
      else this.#departed.reloads.failed++;
      if (result.ok) log.info(`${trigger}: configuration reloaded`, { config: this.config.source, workers: this.count });
      else log.error(`${trigger}: reload refused, the running configuration stays`, { errors: result.errors });
      return result;
    } finally {
      sdNotify("READY=1");
    }
  }

  async #reload(reopen: boolean): Promise<ReloadResult> {
    let config: Config;
    try {
      config = this.load();
    } catch (e) {
      return { ok: false, errors: e instanceof ConfigError ? e.lines : [(e as Error).message] };
    }
    if (workerCount(config.workers) !== this.count) log.warn("workers changed: the new count applies at the next start or binary upgrade", { running: this.count, configured: config.workers });
    if (!this.#sockets.matches(config)) return this.#replaceAll(config);
    this.config = config;
    const replies = await this.#ask((id) => ({ t: "reload", id, reopen }), this.#current());
    const errors = (replies as FromWorker[]).flatMap((r) => (r.t === "reloaded" && !r.result.ok ? r.result.errors : []));
    return errors.length ? { ok: false, errors: [...new Set(errors)] } : { ok: true };
  }

  /** The addresses changed: new sockets, a new set of workers, then the old set drains. */
  async #replaceAll(config: Config): Promise<ReloadResult> {
    try {
      for (const s of this.#sockets.open(config)) log.info("listening", { address: s.bound, configured: s.key, sockets: s.fds.length, origin: s.origin });
    } catch (e) {
      return { ok: false, errors: [(e as Error).message] };
    }
    const old = this.#current();
    const previous = this.config;
    for (const w of old) w.retiring = true;
    this.config = config;
    const fresh = this.#slots.map((_, slot) => this.#spawn(slot));
    try {
      await this.#whenReady(fresh);
    } catch (e) {
      // Back to the old set: it never stopped serving; the new sockets close again.
      for (const w of fresh) { w.retiring = true; w.proc.kill("SIGKILL"); }
      for (const w of old) { w.retiring = false; this.#slots[w.slot] = w; }
      this.config = previous;
      this.#sockets.closeUnused(previous);
      return { ok: false, errors: [(e as Error).message] };
    }
    for (const w of old) this.#send(w, { t: "stop" });
    for (const s of this.#sockets.closeUnused(config)) log.info("stopped listening", { address: s.bound });
    return { ok: true };
  }

  /** Every worker's counters plus those of workers that have exited. */
  async metrics(): Promise<Metrics> {
    const sum = new Metrics();
    sum.add(this.#departed.snapshot());
    Object.assign(sum.reloads, this.#departed.reloads);
    const replies = await this.#ask((id) => ({ t: "scrape", id }), [...this.#workers].filter((w) => w.ready));
    for (const r of replies as FromWorker[]) if (r.t === "metrics") sum.add(r.metrics);
    sum.workers = this.#current().length;
    return sum;
  }

  /** Stop every worker (each drains up to drainTimeoutMs), close the sockets, resolve when all are gone. */
  async stop(signal: string, handedOver = false): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (!handedOver) sdNotify("STOPPING=1");
    log.info(`${signal}: draining`, { workers: this.#workers.size, drainTimeoutMs: this.config.drainTimeoutMs });
    for (const w of this.#workers) this.#send(w, { t: "stop" });
    // Without this the kernel would go on queueing new connections that no worker will accept.
    this.#sockets.closeAll();
    const deadline = Date.now() + this.config.drainTimeoutMs + STOP_GRACE_MS;
    while (this.#workers.size > 0 && Date.now() < deadline) await Bun.sleep(50);
    for (const w of this.#workers) w.proc.kill("SIGKILL");
  }

  /** Second signal: stop at once. */
  kill(): void {
    for (const w of this.#workers) w.proc.kill("SIGKILL");
  }

  /** Every held socket with its fds, for a binary upgrade. */
  handedSockets(): HandedSockets {
    return this.#sockets.sockets.map((s) => [s.key, s.fds] as const);
  }

  #current(): Worker[] {
    return [...this.#workers].filter((w) => !w.retiring);
  }

  #spawn(slot: number): Worker {
    // Only the sockets of the configuration it will run: while a reload's old set drains, the
    // supervisor still holds removed addresses' sockets, and a worker given one would keep it listening
    // unserved (the kernel completes handshakes nobody accepts) after the supervisor closes its copy.
    const wanted = socketKeys(this.config);
    const fds = new Map([...this.#sockets.fdsFor(slot)].filter(([key]) => wanted.has(key)));
    const keys = [...fds.keys()];
    const extra: Record<string, string> = { [WORKER_ENV.slot]: String(slot), [WORKER_ENV.fds]: JSON.stringify(keys.map((k, i) => [k, 3 + i])) };
    const passed = keys.map((k) => fds.get(k)!);
    const column = this.#limitsFd === null ? null : this.#takeColumn();
    if (column !== null) {
      extra[WORKER_ENV.limits] = JSON.stringify({ fd: 3 + passed.length, column });
      passed.push(this.#limitsFd!);
    }
    const env = childEnv(extra, true);
    const worker: Worker = {
      slot, column, startedAt: Date.now(), ready: false, retiring: false, onReady: null,
      proc: Bun.spawn(workerCommand(), {
        stdio: ["ignore", "inherit", "inherit", ...passed],
        env,
        ipc: (m: FromWorker) => this.#onMessage(worker, m),
        onExit: (_p, code, signal) => this.#onExit(worker, code, signal),
      }),
    };
    this.#workers.add(worker);
    this.#slots[slot] = worker;
    return worker;
  }

  /**
   * The column with the fewest live workers: a free one while there are at most LIMIT_COLUMNS
   * workers alive (draining ones included), so a replacement never shares the column of the worker
   * it replaces and an exited worker's column can be cleared.
   */
  #takeColumn(): number {
    const column = this.#columnUsers.indexOf(Math.min(...this.#columnUsers));
    this.#columnUsers[column]!++;
    return column;
  }

  /**
   * A worker has exited, however (kill -9 releases nothing): once no live worker counts in its
   * column, what it left there is cleared, before any replacement can be given that column.
   */
  #releaseColumn(w: Worker): void {
    if (w.column === null || --this.#columnUsers[w.column]! > 0) return;
    const error = limitsClearColumn(this.#limitsFd!, w.column);
    if (error) log.warn("cannot clear an exited worker's counts in the shared limits table", { slot: w.slot, pid: w.proc.pid, error });
  }

  #onMessage(w: Worker, m: FromWorker): void {
    switch (m.t) {
      case "ready":
        w.ready = true;
        w.onReady?.(true);
        w.onReady = null;
        return;
      case "draining":
        if (w.retiring || this.#stopping) return;
        w.retiring = true;
        log.info("worker draining on a signal; starting its replacement", { slot: w.slot, pid: w.proc.pid });
        this.#spawn(w.slot);
        return;
      case "metrics":
        if (m.id === 0) {
          // Its last words: counted here from now on, and no longer scraped (it is about to exit).
          w.ready = false;
          return void this.#departed.add(withoutActive(m.metrics));
        }
        this.#reply(m.id, m);
        return;
      case "reloaded":
        this.#reply(m.id, m);
        return;
      case "cancel":
        // The session is in some other worker; the one that owns the key sends it on.
        for (const other of this.#workers) if (other !== w && other.ready) this.#send(other, m);
        return;
    }
  }

  #onExit(w: Worker, code: number | null, signal: number | string | null): void {
    this.#workers.delete(w);
    this.#releaseColumn(w);
    w.onReady?.(false);
    w.onReady = null;
    if (this.#slots[w.slot] === w) this.#slots[w.slot] = null;
    if (w.retiring || this.#stopping) return void log.info("worker exited", { slot: w.slot, pid: w.proc.pid, code });
    const lived = Date.now() - w.startedAt;
    if (lived > HEALTHY_AFTER_MS) this.#failures[w.slot] = 0;
    const delay = Math.min(BACKOFF_FIRST_MS * 2 ** this.#failures[w.slot]!, BACKOFF_MAX_MS);
    this.#failures[w.slot]!++;
    log.warn("worker died; replacing it", { slot: w.slot, pid: w.proc.pid, code, signal, restartInMs: delay });
    setTimeout(() => {
      if (!this.#stopping && this.#slots[w.slot] === null) this.#spawn(w.slot);
    }, delay);
  }

  #whenReady(workers: Worker[]): Promise<void> {
    return new Promise((resolve, reject) => {
      let left = workers.length;
      let failed = false;
      const fail = (why: string) => { if (!failed) { failed = true; clearTimeout(timer); reject(new Error(why)); } };
      const timer = setTimeout(() => fail(`workers did not start within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
      const one = (ok: boolean) => {
        if (!ok) return fail("a worker exited before it was ready (see its log lines above)");
        if (--left === 0 && !failed) { clearTimeout(timer); resolve(); }
      };
      for (const w of workers) {
        if (w.ready) one(true);
        else w.onReady = one;
      }
      if (workers.length === 0) { clearTimeout(timer); resolve(); }
    });
  }

  #send(w: Worker, m: ToWorker): void {
    try {
      w.proc.send(m);
    } catch {
      // The worker is exiting; its exit handler does the rest.
    }
  }

  /** Send a request to `targets`; resolves with the replies that came within ASK_TIMEOUT_MS. */
  #ask(build: (id: number) => ToWorker, targets: Worker[]): Promise<unknown[]> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const replies: unknown[] = [];
      const done = () => { clearTimeout(timer); this.#pending.delete(id); resolve(replies); };
      const timer = setTimeout(done, ASK_TIMEOUT_MS);
      this.#pending.set(id, { replies, expected: targets.length, done });
      for (const w of targets) this.#send(w, build(id));
      if (targets.length === 0) done();
    });
  }

  #reply(id: number, m: unknown): void {
    const p = this.#pending.get(id);
    if (!p) return;
    p.replies.push(m);
    if (p.replies.length >= p.expected) p.done();
  }
}

/** The socket key of every address of every listener of `config`. */
function socketKeys(config: Config): Set<string> {
  return new Set(config.listeners.flatMap((l) => l.listen.map((a) => socketKey(a, l.name))));
}

function withoutActive(s: MetricsSnapshot): MetricsSnapshot {
  const zero = <T extends { active: number }>(c: T): T => ({ ...c, active: 0 });
  // A departed worker's HTTP pool gauges (idle, active connections) are gone with it; its counters stay.
  const http = s.http && { ...s.http, pools: s.http.pools.map(([k, p]): [string, typeof p] => [k, { ...p, idle: 0, active: 0 }]) };
  // Its engines' pairs are gone with it too; the streams it handed to splice stay counted.
  const relayPairs = s.relayPairs?.map(([engine]): [string, number] => [engine, 0]);
  return { ...s, listeners: s.listeners.map(([k, c]) => [k, zero(c)]), routes: s.routes.map(([k, c]) => [k, zero(c)]), ...(http ? { http } : {}), ...(relayPairs ? { relayPairs } : {}) };
}

/**
 * The environment of a child: ours plus `extra`, without systemd's per-process variables (the socket
 * fds and LISTEN_PID are ours; a worker must not notify systemd or ping its watchdog).
 */
function childEnv(extra: Record<string, string>, worker: boolean): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const v of SYSTEMD_SOCKET_VARIABLES) delete env[v];
  delete env[UPGRADE_ENV];
  Object.assign(env, extra);
  if (worker) for (const v of ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]) delete env[v];
  else delete env.WATCHDOG_PID;
  return env;
}

/** `workers`: a number, or "auto" = one per core. */
export function workerCount(workers: Config["workers"]): number {
  return workers === "auto" ? availableParallelism() : workers;
}

/**
 * The path this binary was started from, read once at start: after the file is replaced by rename
 * (an upgrade), Bun's execPath reads /proc/self/exe again and names the old, deleted file.
 */
const SELF = process.execPath.replace(/ \(deleted\)$/, "");

/** This program with the same arguments: the compiled binary, or bun running the entry script. */
export function workerCommand(): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/");
  return compiled ? [SELF, ...process.argv.slice(2)] : [SELF, Bun.main, ...process.argv.slice(2)];
}
