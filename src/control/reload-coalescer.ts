/**
 * One edit, one reload. Saving the config file and then sending SIGHUP (or POST /reload) used to reload
 * twice: once for the file watcher, once for the signal. Every reload goes through here, one at a time,
 * and the file's content is remembered (a hash) as each one reads it:
 * - a file-watcher event is skipped when the file holds the content last read: a signal or POST /reload
 *   has applied it already, or the save changed nothing;
 * - a signal or POST /reload within {@link SAME_EDIT_MS} of a watcher reload of the same content is that
 *   same edit: skipped (SIGHUP still reopens the log files).
 * Otherwise a signal or POST /reload always reloads, changed file or not: certificates and the resolver
 * module can change on disk while the config file does not.
 * @module
 */
import { readFileSync } from "node:fs";
import { log } from "../log/logger.ts";
import type { ReloadResult } from "./service.ts";

/** A signal this soon after the watcher reloaded the same content is taken as meant for that edit. */
export const SAME_EDIT_MS = 2000;

export interface Reloader {
  /** Validate and apply the configuration; `reopen` (SIGHUP): reopen log files first. Never throws. */
  reload(trigger: string, reopen: boolean): Promise<ReloadResult>;
  /** Reopen log files only (a SIGHUP whose reload is skipped: logrotate still needs it). */
  reopenLogs(): void;
}

export class ReloadCoalescer {
  #queue: Promise<unknown> = Promise.resolve();
  /**
   * The content the last reload read; whether that was the watcher's, applied; when. Unknown at start
   * (the file may have changed since it was loaded), so the first change always reloads.
   */
  #last: { hash: bigint | null; byWatcher: boolean; at: number } = { hash: null, byWatcher: false, at: 0 };

  /** `file`: the config file (null when the configuration came from flags or the environment). */
  constructor(readonly file: string | null, readonly reloader: Reloader) {}

  /** The file watcher saw the config file change. */
  fileChanged(): Promise<ReloadResult> {
    return this.#next(() => {
      const hash = this.#hash();
      if (hash !== null && hash === this.#last.hash) {
        log.info("config file changed: same content as loaded last; not reloading again", { file: this.file });
        return Promise.resolve({ ok: true, unchanged: true });
      }
      return this.#run("config file changed", false, hash, true);
    });
  }

  /** SIGHUP (`reopen`) or POST /reload. */
  requested(trigger: string, reopen: boolean): Promise<ReloadResult> {
    return this.#next(() => {
      const hash = this.#hash();
      const since = Date.now() - this.#last.at;
      if (hash !== null && hash === this.#last.hash && this.#last.byWatcher && since < SAME_EDIT_MS) {
        if (reopen) this.reloader.reopenLogs();
        log.info(`${trigger}: configuration unchanged since the file watcher reloaded it ${since} ms ago; not reloading again`, { file: this.file });
        return Promise.resolve({ ok: true, unchanged: true });
      }
      return this.#run(trigger, reopen, hash, false);
    });
  }

  async #run(trigger: string, reopen: boolean, hash: bigint | null, byWatcher: boolean): Promise<ReloadResult> {
    const result = await this.reloader.reload(trigger, reopen);
    this.#last = { hash, byWatcher: byWatcher && result.ok, at: Date.now() };
    return result;
  }

  #next(step: () => Promise<ReloadResult>): Promise<ReloadResult> {
    const run = this.#queue.then(step);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Null when there is no file or it cannot be read (then nothing is skipped). */
  #hash(): bigint | null {
    if (this.file === null) return null;
    try {
      return BigInt(Bun.hash(readFileSync(this.file)));
    } catch {
      return null;
    }
  }
}
