/**
 * Where a configuration comes from, in precedence order: flags > environment > file > defaults.
 * Every failure is a {@link ConfigError} whose lines read `FILE:LINE:COL: message` (or
 * `--flag: message` / `VARIABLE: message` for values that came from there).
 * @module
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import embeddedDefault from "./default.jsonc" with { type: "text" };
import { parseJsonc, JsoncSyntaxError, type ParsedJsonc } from "./jsonc.ts";
import { readConfig } from "./schema.ts";
import type { Config } from "./types.ts";
import { applyEnvironment, configFromEnvironment } from "./environment.ts";
import { applyFlags, configFromFlags, type ConfigFlags } from "./flags.ts";
import { originOf, type Layer } from "./layer.ts";

export const EMBEDDED_SOURCE = "<embedded default>";

/** A configuration that could not be used; `lines` are ready to print, one problem each. */
export class ConfigError extends Error {
  constructor(readonly lines: readonly string[]) {
    super(lines.join("\n"));
    this.name = "ConfigError";
  }
}

export interface LoadOptions {
  file: string | null;
  flags: ConfigFlags;
  env: Record<string, string | undefined>;
}

/**
 * Build the configuration to run. Without a file, `--listen` or the reference proxy's variables
 * describe the listeners; with none of them, the embedded default runs.
 */
export function loadConfig({ file, flags, env }: LoadOptions): Config {
  if (file && (flags.listen.length > 0 || flags.backend)) {
    throw new ConfigError(["--listen/--backend describe a whole proxy of their own: use them without -c, or put the listener in the file"]);
  }
  let parsed: ParsedJsonc | null = null;
  let layer: Layer;
  if (file) {
    const source = resolve(file);
    parsed = parseText(readSource(source), source);
    layer = { source, value: parsed.value, origins: new Map() };
  } else {
    const generated = configFromFlags(flags, env) ?? configFromEnvironment(flags.mode, env);
    if (generated) layer = generated;
    else {
      parsed = parseText(embeddedDefault, EMBEDDED_SOURCE);
      layer = { source: EMBEDDED_SOURCE, value: parsed.value, origins: new Map() };
    }
  }
  applyFlags(applyEnvironment(layer, env), flags);

  const { config, issues } = readConfig(layer.value, layer.source, env);
  if (config) return config;
  throw new ConfigError(issues.map((issue) => {
    const origin = originOf(layer, issue.path);
    if (origin) return `${origin}: ${issue.message}`;
    if (!parsed) return `${layer.source}: ${issue.message}`;
    const at = parsed.locate(issue.path);
    return `${layer.source}:${at.line}:${at.column}: ${issue.message}`;
  }));
}

function readSource(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : String(e);
    throw new ConfigError([`${path}:1:1: cannot read config file: ${why}`]);
  }
}

function parseText(text: string, source: string): ParsedJsonc {
  try {
    return parseJsonc(text);
  } catch (e) {
    if (e instanceof JsoncSyntaxError) throw new ConfigError([`${source}:${e.line}:${e.column}: ${e.message}`]);
    throw e;
  }
}
