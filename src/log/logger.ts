/**
 * Console logging: human text by default, one JSON object a line when asked (for journald or a
 * collector). Fields are flat key/values so both formats carry the same facts.
 * @module
 */
import type { LogFormat, LogLevel } from "../config/types.ts";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
type Fields = Record<string, unknown>;

export class Logger {
  #min = RANK.info;
  #format: LogFormat = "text";
  /** Fields on every line of this process (a worker's number). */
  #base: Fields | undefined;

  configure(level: LogLevel, format: LogFormat | null): void {
    this.#min = RANK[level];
    this.#format = format ?? "text";
  }

  /** Add `fields` to every line this process writes from now on. */
  tag(fields: Fields): void {
    this.#base = { ...this.#base, ...fields };
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.#min;
  }

  debug(msg: string, fields?: Fields): void { this.#write("debug", msg, fields); }
  info(msg: string, fields?: Fields): void { this.#write("info", msg, fields); }
  warn(msg: string, fields?: Fields): void { this.#write("warn", msg, fields); }
  error(msg: string, fields?: Fields): void { this.#write("error", msg, fields); }

  #write(level: LogLevel, msg: string, fields: Fields | undefined): void {
    if (RANK[level] < this.#min) return;
    if (this.#base) fields = { ...this.#base, ...fields };
    const ts = new Date().toISOString();
    let line: string;
    if (this.#format === "json") {
      line = JSON.stringify({ ts, level, msg, ...fields });
    } else {
      line = `${ts} ${level.toUpperCase().padEnd(5)} ${msg}`;
      if (fields) for (const [k, v] of Object.entries(fields)) line += ` ${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`;
    }
    process.stderr.write(line + "\n");
  }
}

/** The process's logger; configured once the config is known. */
export const log = new Logger();
