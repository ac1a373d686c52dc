/**
 * The command-line layer of the configuration (highest precedence). `--listen` with `--backend`
 * (or `--resolver`) is a whole TCP proxy with no file; the other flags override single keys.
 * @module
 */
import type { Layer } from "./layer.ts";
import { setKey } from "./layer.ts";

export interface ConfigFlags {
  mode: "tcp" | "http" | "smtp" | null;
  listen: readonly string[];
  backend: string | null;
  workers: string | null;
  relay: string | null;
  resolver: string | null;
  admin: string | null;
  logLevel: string | null;
  logFormat: string | null;
}

/** A config made from `--listen` (and `--backend`), or null when no `--listen` was given. */
export function configFromFlags(flags: ConfigFlags, env: Record<string, string | undefined>): Layer | null {
  if (flags.listen.length === 0) return null;
  const layer: Layer = { source: "<flags>", value: {}, origins: new Map() };
  const backend = flags.backend ?? env.TCP_BACKEND_ENDPOINT;
  const listener: Record<string, unknown> = { name: "cli", listen: [...flags.listen], protocol: flags.mode ?? "tcp" };
  if (backend) listener.routes = [{ name: "backend", upstreams: [{ address: backend }] }];
  (layer.value as Record<string, unknown>).listeners = [listener];
  layer.origins.set(JSON.stringify(["listeners", 0, "listen"]), "--listen");
  layer.origins.set(JSON.stringify(["listeners", 0, "routes"]), flags.backend ? "--backend" : "TCP_BACKEND_ENDPOINT");
  layer.origins.set(JSON.stringify(["listeners", 0, "protocol"]), "serve MODE");
  return layer;
}

/** Single keys that flags override, whatever the config's origin. */
export function applyFlags(layer: Layer, flags: ConfigFlags): Layer {
  if (flags.workers !== null) setKey(layer, ["workers"], /^\d+$/.test(flags.workers) ? Number(flags.workers) : flags.workers, "--workers");
  if (flags.relay !== null) setKey(layer, ["relay"], flags.relay, "--relay");
  if (flags.resolver !== null) setKey(layer, ["resolver"], flags.resolver, "--resolver");
  if (flags.admin !== null) setKey(layer, ["admin", "listen"], flags.admin, "--admin");
  if (flags.logLevel !== null) setKey(layer, ["log", "level"], flags.logLevel, "--log-level");
  if (flags.logFormat !== null) setKey(layer, ["log", "format"], flags.logFormat, "--log-format");
  return layer;
}
