/**
 * A small typed reader over a parsed JSONC value that collects every problem with its path instead
 * of stopping at the first, so one `validate` run reports all mistakes in a file.
 * @module
 */
import type { JsonPath } from "./jsonc.ts";

/** One problem found in a config, located by path; the loader turns the path into LINE:COL. */
export interface ConfigIssue {
  readonly path: JsonPath;
  readonly message: string;
}

export type Obj = Record<string, unknown>;

export class ConfigReader {
  readonly issues: ConfigIssue[] = [];

  fail(path: JsonPath, message: string): undefined {
    this.issues.push({ path, message });
    return undefined;
  }

  /** An object whose keys must all be in `known`; unknown keys are reported one by one. */
  object(value: unknown, path: JsonPath, known: readonly string[]): Obj | undefined {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return this.fail(path, `${name(path)} must be an object, got ${kind(value)}`);
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) this.fail([...path, key], `unknown key "${key}" in ${name(path)} (known: ${known.join(", ")})`);
    }
    return value as Obj;
  }

  array(value: unknown, path: JsonPath): unknown[] | undefined {
    if (!Array.isArray(value)) return this.fail(path, `${name(path)} must be an array, got ${kind(value)}`);
    return value;
  }

  /**
   * A string or a list of strings (a match field): each checked by `problem` (null: fine, else the
   * message); the good ones returned, each bad one reported at its own position.
   */
  stringList(obj: Obj, key: string, path: JsonPath, problem: (s: string) => string | null): string[] {
    const v = obj[key];
    if (v === undefined) return [];
    const items = typeof v === "string" ? [v] : this.array(v, [...path, key]);
    const out: string[] = [];
    items?.forEach((item, i) => {
      const at = typeof v === "string" ? [...path, key] : [...path, key, i];
      if (typeof item !== "string") return void this.fail(at, `${key} entries are strings, got ${JSON.stringify(item)}`);
      const why = problem(item);
      if (why) this.fail(at, why);
      else out.push(item);
    });
    return out;
  }

  string(obj: Obj, key: string, path: JsonPath, fallback: string): string;
  string(obj: Obj, key: string, path: JsonPath, fallback?: undefined): string | undefined;
  string(obj: Obj, key: string, path: JsonPath, fallback?: string): string | undefined {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "string") return this.fail([...path, key], `${key} must be a string, got ${kind(v)}`) ?? fallback;
    return v;
  }

  boolean(obj: Obj, key: string, path: JsonPath, fallback: boolean): boolean {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") return this.fail([...path, key], `${key} must be true or false, got ${kind(v)}`) ?? fallback;
    return v;
  }

  /** A whole number within [min, max]. */
  integer(obj: Obj, key: string, path: JsonPath, fallback: number, min: number, max: number): number {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      return this.fail([...path, key], `${key} must be a whole number from ${min} to ${max}, got ${show(v)}`) ?? fallback;
    }
    return v;
  }

  oneOf<T extends string>(obj: Obj, key: string, path: JsonPath, allowed: readonly T[], fallback: T): T {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
      return this.fail([...path, key], `${key} must be one of ${allowed.join(", ")}, got ${show(v)}`) ?? fallback;
    }
    return v as T;
  }
}

function name(path: JsonPath): string {
  if (path.length === 0) return "the configuration";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `${typeof v} ${show(v)}`;
}

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}
