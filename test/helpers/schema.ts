/**
 * Helpers of the schema unit tests (test/unit/schema.test.ts, tls-schema.test.ts): a minimal valid
 * config to vary, and readConfig's answer as a Config or as `path: message` lines.
 */
import { expect } from "bun:test";
import { readConfig } from "../../src/config/schema.ts";
import type { JsonPath } from "../../src/config/jsonc.ts";
import type { Config } from "../../src/config/types.ts";

export type Json = Record<string, unknown>;

/** `listeners[0].routes[1].name` for a path, to keep expectations short. */
export function show(path: JsonPath): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

/** A valid config with one listener and one route, with `listener` and `route` merged in. */
export function minimal(listener: Json = {}, route: Json = {}, top: Json = {}): Json {
  return {
    listeners: [{ listen: "127.0.0.1:7000", routes: [{ upstreams: ["127.0.0.1:7001"], ...route }], ...listener }],
    ...top,
  };
}

export function valid(value: unknown, env: Record<string, string | undefined> = {}): Config {
  const { config, issues } = readConfig(value, "test.jsonc", env);
  if (!config) throw new Error(`expected a valid config, got:\n${issues.map((i) => `${show(i.path)}: ${i.message}`).join("\n")}`);
  expect(issues).toEqual([]);
  return config;
}

/** Every issue as `path: message`, in the order reported. */
export function issues(value: unknown, env: Record<string, string | undefined> = {}): string[] {
  const result = readConfig(value, "test.jsonc", env);
  expect(result.config).toBeNull();
  return result.issues.map((i) => `${show(i.path)}: ${i.message}`);
}
