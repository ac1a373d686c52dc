/**
 * The command line of SPEC.md, parsed with node:util parseArgs. Every flag of the SPEC is accepted;
 * whether its value is built is the configuration's business (src/config/schema.ts).
 * @module
 */
import { parseArgs } from "node:util";
import type { ConfigFlags } from "../config/flags.ts";

export type Command =
  | { kind: "serve"; file: string | null; flags: ConfigFlags }
  | { kind: "validate"; file: string | null; flags: ConfigFlags }
  | { kind: "version" }
  | { kind: "help" };

export class UsageError extends Error {}

const OPTIONS = {
  config: { type: "string", short: "c" },
  listen: { type: "string", multiple: true },
  backend: { type: "string" },
  workers: { type: "string" },
  relay: { type: "string" },
  resolver: { type: "string" },
  admin: { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[\w+\]: /, ""));
  }
  const { values: v, positionals } = parsed;
  if (v.help) return { kind: "help" };
  if (v.version) return { kind: "version" };
  const [name = "serve", ...rest] = positionals;
  if (name === "help") return { kind: "help" };
  if (name === "version") return { kind: "version" };
  if (name !== "serve" && name !== "validate") throw new UsageError(`unknown command "${name}" (commands: serve, validate, version)`);
  const mode = name === "serve" ? rest.shift() ?? null : null;
  if (mode !== null && mode !== "tcp" && mode !== "http" && mode !== "smtp") throw new UsageError(`unknown serve mode "${mode}" (tcp, http or smtp)`);
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const flags: ConfigFlags = {
    mode,
    listen: v.listen ?? [],
    backend: v.backend ?? null,
    workers: v.workers ?? null,
    relay: v.relay ?? null,
    resolver: v.resolver ?? null,
    admin: v.admin ?? null,
    logLevel: v["log-level"] ?? null,
    logFormat: v["log-format"] ?? null,
  };
  return { kind: name, file: v.config ?? null, flags };
}

export const HELP = `switchyard: a protocol-aware TCP/TLS/HTTP/SMTP proxy in one binary

Usage:
  switchyard serve [tcp|http|smtp] [options]   run the proxy (no options: the embedded default on 127.0.0.1:8080)
  switchyard validate [-c FILE]                check a configuration; exit 0 with a summary, or 1 with FILE:LINE:COL: message
  switchyard version | --version               version, Bun version, native library and relay engines usable here
  switchyard --help                            this text

Options (flags > environment > config file > defaults):
  -c, --config FILE         JSONC configuration file                       (default: none; the embedded default)
  --listen ADDR             listen address, repeatable: host:port, [v6]:port, unix:/path
  --backend HOST:PORT       with --listen: the upstream of a plain TCP proxy (env TCP_BACKEND_ENDPOINT)
  --workers N|auto          worker processes                                (default: 1 = one process; N > 1: a supervisor and N worker processes)
  --relay ENGINE            auto | userspace | splice | sockmap | uring     (default: auto = uring accepts and relays plain tcp listeners, streams and others go to splice; sockmap only by name)
  --resolver FILE           resolver module (.ts or .js) deciding upstreams (env PROXY_RESOLVER)
  --admin ADDR              admin API address                               (default: none; embedded default 127.0.0.1:9901)
  --log-level LEVEL         debug | info | warn | error                     (default: info)
  --log-format FORMAT       text | json                                     (default: text)
  -h, --help                this text
  -v, --version             same as the version command

Environment (used where no file is given, as the reference proxy does):
  TCP_BACKEND_ENDPOINT (127.0.0.1:5432), TCP_POSTGRES_PORT (5432), TCP_MYSQL_PORT (3306), TCP_WORKERS,
  TCP_SKIP_VALIDATION, TCP_SOCKMAP_ENABLED, HTTP_BACKEND_ENDPOINT, HTTP_PORT, HTTP_WORKERS, HTTP_SKIP_VALIDATION,
  SMTP_BACKEND_ENDPOINT, SMTP_PORT, SMTP_SKIP_VALIDATION, PROXY_RESOLVER. SWITCHYARD_NATIVE=off runs without
  the native library; the sockmap engine is off unless SWITCHYARD_NATIVE_SOCKMAP=experimental (it can deliver
  bytes twice on current kernels: README, Relay engines).

Signals: SIGHUP reopens log files and reloads the configuration (validated first; an invalid one is refused and
the running one stays); SIGTERM/SIGINT stop accepting, drain open connections (drainTimeoutMs), exit 0.
Examples:
  switchyard serve --listen 127.0.0.1:7000 --backend 127.0.0.1:7001
  switchyard serve -c /etc/switchyard/switchyard.jsonc
  switchyard validate -c /etc/switchyard/switchyard.jsonc
`;
