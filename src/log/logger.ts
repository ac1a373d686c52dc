/**
 * Console logging: human text by default, one JSON object a line when asked (for journald or a
 * collector). Fields are flat key/values so both formats carry the same facts. Warnings repeated
 * with the same message are rate-limited (src/log/repeat-limit.ts): the first few per window, then
 * one `suppressed K similar warnings: <msg>` line when the window ends.
 * @module
 */
import type { LogFormat, LogLevel } from "../config/types.ts";
import { REAL_CLOCK, RepeatLimiter, type Clock } from "./repeat-limit.ts";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
type Fields = Record<string, unknown>;

export class Logger {
  #min = RANK.info;
  #format: LogFormat = "text";
  /** Fields on every line of this process (a worker's number). */
  #base: Fields | undefined;
  readonly #repeats: RepeatLimiter;

  constructor(
    clock: Clock = REAL_CLOCK,
    /** Where lines go (stderr; a test collects them). */
    readonly out: (line: string) => void = (line) => void process.stderr.write(line),
  ) {
    this.#repeats = new RepeatLimiter(clock, (msg, n) => this.#write("warn", `suppressed ${n} similar warnings: ${msg}`, undefined));
  }

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
  warn(msg: string, fields?: Fields): void {
    if (this.enabled("warn") && this.#repeats.admit(msg) === "write") this.#write("warn", msg, fields);
  }
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
    this.out(line + "\n");
  }
}

/** The process's logger; configured once the config is known. */
export const log = new Logger();
