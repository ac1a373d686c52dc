/**
 * A raw (not yet validated) configuration value and where each key set by flags or environment
 * came from, so a bad value is reported against the flag or variable that set it, not a file line.
 * @module
 */
import type { JsonPath } from "./jsonc.ts";

export interface Layer {
  /** A path, "<embedded default>", "<flags>" or "<environment>". */
  source: string;
  value: unknown;
  /** JSON.stringify(path) → the flag or variable that set the value at that path. */
  origins: Map<string, string>;
}

/** Set `path` in the layer's value, creating objects on the way, and remember who set it. */
export function setKey(layer: Layer, path: readonly string[], value: unknown, origin: string): void {
  if (typeof layer.value !== "object" || layer.value === null || Array.isArray(layer.value)) return;
  let node = layer.value as Record<string, unknown>;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
  layer.origins.set(JSON.stringify(path), origin);
}

/** The flag or variable that set `path` or one of its ancestors, if any. */
export function originOf(layer: Layer, path: JsonPath): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const origin = layer.origins.get(JSON.stringify(path.slice(0, n)));
    if (origin) return origin;
  }
  return undefined;
}
