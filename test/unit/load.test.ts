import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { ConfigError, EMBEDDED_SOURCE, loadConfig } from "../../src/config/load.ts";
import type { ConfigFlags } from "../../src/config/flags.ts";
import type { Config } from "../../src/config/types.ts";

const NOT_BUILT = "is not built yet in this version (see the status table in README.md)";
const LISTENER_KEYS = "name, listen, protocol, reusePort, defaultCert, certDir, mtls, maxConnections, idleTimeoutMs, handshakeTimeoutMs, "
  + "connectTimeoutMs, resolveTimeoutMs, skipValidation, protection, routes, smtp, acceptProxyProtocol, http";

const dir = mkdtempSync(join(tmpdir(), "switchyard-load-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
/** Writes `lines` (joined with LF) to a new file and returns its absolute path. */
function file(...lines: string[]): string {
  const path = join(dir, `config-${++fileCount}.jsonc`);
  writeFileSync(path, lines.join("\n"));
  return path;
}

type Env = Record<string, string | undefined>;

function flags(overrides: Partial<ConfigFlags> = {}): ConfigFlags {
  return {
    mode: null, listen: [], backend: null, workers: null, relay: null, resolver: null, admin: null, logLevel: null, logFormat: null,
    ...overrides,
  };
}

function load(path: string | null, f: Partial<ConfigFlags> = {}, env: Env = {}): Config {
  return loadConfig({ file: path, flags: flags(f), env });
}

/** The printed lines of the ConfigError that loading throws. */
function errorLines(path: string | null, f: Partial<ConfigFlags> = {}, env: Env = {}): readonly string[] {
  try {
    load(path, f, env);
  } catch (e) {
    if (e instanceof ConfigError) {
      expect(e.message).toBe(e.lines.join("\n"));
      return e.lines;
    }
    throw e;
  }
  throw new Error("expected a ConfigError");
}

/** A small valid file: one listener on 127.0.0.1:7000 to 127.0.0.1:7001, plus `extra` top-level lines. */
function validFile(...extra: string[]): string {
  return file(
    "{",
    ...extra,
    '  "listeners": [{ "name": "main", "listen": "127.0.0.1:7000", "routes": [{ "upstreams": ["127.0.0.1:7001"] }] }]',
    "}",
  );
}

describe("a file", () => {
  test("a valid file with comments and trailing commas loads, with its absolute path as source", () => {
    const path = file(
      "// switchyard test config",
      "{",
      "  /* block",
      "     comment */",
      '  "listeners": [',
      '    { "listen": ["127.0.0.1:7000",], "routes": [{ "upstreams": ["127.0.0.1:7001",], },], },',
      "  ],",
      "}",
    );
    const config = load(path);
    expect(config.source).toBe(path);
    expect(config.listeners[0]!.listen).toEqual([{ kind: "inet", host: "127.0.0.1", port: 7000, literal: true }]);
    expect(config.workers).toBe(1);
    expect(config.admin).toBeNull();
  });

  test("a relative path is resolved, and errors name the absolute path", () => {
    const path = file("{}");
    const rel = relative(process.cwd(), path);
    expect(errorLines(rel)).toEqual([`${path}:1:1: listeners is required`]);
  });

  test("${ADMIN_TOKEN} in admin.token is expanded from the environment", () => {
    const path = validFile('  "admin": { "listen": "127.0.0.1:9901", "token": "${ADMIN_TOKEN}" },');
    expect(load(path, {}, { ADMIN_TOKEN: "t0ken" }).admin).toEqual({
      listen: { kind: "inet", host: "127.0.0.1", port: 9901, literal: true }, token: "t0ken",
    });
  });

  test("an unset ${ADMIN_TOKEN} is an error at the token", () => {
    const path = validFile('  "admin": { "token": "${ADMIN_TOKEN}" },');
    expect(errorLines(path)).toEqual([`${path}:2:14: admin.token is empty (is its \${VARIABLE} set?)`]);
  });

  test("TCP_BACKEND_ENDPOINT and the port variables are ignored when a file is given", () => {
    const config = load(validFile(), {}, { TCP_BACKEND_ENDPOINT: "10.9.9.9:1", TCP_POSTGRES_PORT: "1", TCP_MYSQL_PORT: "2" });
    expect(config.listeners.map((l) => l.name)).toEqual(["main"]);
    expect(config.listeners[0]!.routes[0]!.upstreams[0]!.text).toBe("127.0.0.1:7001");
  });
});

describe("broken files: FILE:LINE:COL: message", () => {
  test("syntax error", () => {
    const path = file(
      "{",
      '  "listeners": [',
      '    { "listen": "127.0.0.1:7000" "routes": [] }',
      "  ]",
      "}",
    );
    expect(errorLines(path)).toEqual([`${path}:3:34: expected "," or "}"`]);
  });

  test("unterminated block comment", () => {
    const path = file('{ "workers": 1, /* never closed', "}");
    expect(errorLines(path)).toEqual([`${path}:1:17: unterminated comment`]);
  });

  test("empty file", () => {
    const path = file("");
    expect(errorLines(path)).toEqual([`${path}:1:1: unexpected end of input`]);
  });

  test("duplicate JSON key", () => {
    const path = file("{", '  "workers": 1,', '  "workers": 1', "}");
    expect(errorLines(path)).toEqual([`${path}:3:3: duplicate key "workers"`]);
  });

  test("unknown key, and the missing key it hides", () => {
    const path = file(
      "// a comment line",
      "{",
      '  "listeners": [',
      "    {",
      '      "listen": "127.0.0.1:7000",',
      '      "rootes": [],',
      "    },",
      "  ],",
      "}",
    );
    expect(errorLines(path)).toEqual([
      `${path}:6:7: unknown key "rootes" in listeners[0] (known: ${LISTENER_KEYS})`,
      `${path}:4:5: routes is required (or set a resolver module)`,
    ]);
  });

  test("wrong type", () => {
    const path = file(
      "{",
      '  "listeners": [',
      "    {",
      '      "listen": "127.0.0.1:7000",',
      '      "idleTimeoutMs": "60s",',
      '      "routes": [{ "upstreams": ["127.0.0.1:7001"] }]',
      "    }",
      "  ]",
      "}",
    );
    expect(errorLines(path)).toEqual([`${path}:5:7: idleTimeoutMs must be a whole number from 0 to 86400000, got "60s"`]);
  });

  test("bad address, located at the array item", () => {
    const path = file(
      "{",
      '  "listeners": [',
      "    {",
      '      "listen": ["127.0.0.1:7000", "[::1]:99999"],',
      '      "routes": [{ "upstreams": ["127.0.0.1:7001"] }]',
      "    }",
      "  ]",
      "}",
    );
    expect(errorLines(path)).toEqual([`${path}:4:36: port out of range: 99999`]);
  });

  test("IPv6 upstream without brackets", () => {
    const path = file(
      "{",
      '  "listeners": [{ "listen": "127.0.0.1:7000", "routes": [{',
      '    "upstreams": [{ "address": "::1:7001" }]',
      "  }] }]",
      "}",
    );
    // First line only: a second, spurious "a route needs upstreams" follows today (see schema.test.ts).
    expect(errorLines(path)[0]).toBe(`${path}:3:21: IPv6 addresses need brackets: "[::1]:7001"`);
  });

  test("duplicate listen address across listeners", () => {
    const path = file(
      "{",
      '  "listeners": [',
      '    { "name": "a", "listen": "127.0.0.1:7000", "routes": [{ "upstreams": ["127.0.0.1:7001"] }] },',
      '    { "name": "b", "listen": "127.0.0.1:7000", "routes": [{ "upstreams": ["127.0.0.1:7001"] }] }',
      "  ]",
      "}",
    );
    expect(errorLines(path)).toEqual([`${path}:4:20: duplicate listen address 127.0.0.1:7000 (already used by listener "a")`]);
  });

  test("not built yet", () => {
    const path = file(
      "{",
      '  "listeners": [',
      "    {",
      '      "listen": "127.0.0.1:7000",',
      '      "routes": [{ "upstreams": ["127.0.0.1:7001"],',
      '                   "suspended": true }]',
      "    }",
      "  ]",
      "}",
    );
    expect(errorLines(path)).toEqual([`${path}:6:20: suspended routes ${NOT_BUILT}`]);
  });

  test("several issues, one line each, in order", () => {
    const path = file(
      "{",
      '  "relay": "fast",',
      '  "log": { "level": "chatty" },',
      '  "listeners": [',
      '    { "name": "x", "listen": "127.0.0.1:7000", "routes": [{ "upstreams": ["127.0.0.1:7001"], "balance": "least-cpu" }] },',
      '    { "name": "x", "listen": "127.0.0.1:7001", "respond": {}, "routes": [{ "respond": {} }] }',
      "  ]",
      "}",
    );
    expect(errorLines(path)).toEqual([
      `${path}:2:3: relay must be one of auto, userspace, splice, sockmap, uring, got "fast"`,
      `${path}:3:12: level must be one of debug, info, warn, error, got "chatty"`,
      `${path}:5:75: least-cpu needs every upstream to be { "unix": PATH, "pid": N, "tid": N } (the thread whose CPU use is sampled)`,
      `${path}:6:48: unknown key "respond" in listeners[1] (known: ${LISTENER_KEYS})`,
      `${path}:6:7: duplicate listener name "x"`,
    ]);
  });

  test("missing file", () => {
    const path = join(dir, "does-not-exist.jsonc");
    expect(errorLines(path)).toEqual([`${path}:1:1: cannot read config file: no such file`]);
  });

  test("a directory", () => {
    expect(errorLines(dir)).toEqual([`${dir}:1:1: cannot read config file: is a directory`]);
  });

  // Regression test, fixed bug: the duplicate is reported on line 7 (the bad address before it) instead of line 8, because
  // checkDuplicateAddresses (src/config/schema.ts) indexes only the addresses that parsed.
  test("a duplicate after a bad address points at its own line", () => {
    const path = file(
      "{",
      '  "listeners": [',
      '    { "name": "a", "listen": "127.0.0.1:7000", "routes": [{ "upstreams": ["127.0.0.1:7001"] }] },',
      "    {",
      '      "name": "b",',
      '      "listen": [',
      '        "127.0.0.1",',
      '        "127.0.0.1:7000"',
      "      ],",
      '      "routes": [{ "upstreams": ["127.0.0.1:7001"] }]',
      "    }",
      "  ]",
      "}",
    );
    expect(errorLines(path)).toEqual([
      `${path}:7:9: expected host:port, got "127.0.0.1"`,
      `${path}:8:9: duplicate listen address 127.0.0.1:7000 (already used by listener "a")`,
    ]);
  });
});

describe("no file", () => {
  test("no file, no flags, no environment: the embedded default", () => {
    const config = load(null);
    expect(config.source).toBe(EMBEDDED_SOURCE);
    expect(config.admin!.listen).toEqual({ kind: "inet", host: "127.0.0.1", port: 9901, literal: true });
    expect(config.listeners).toHaveLength(1);
    const [welcome] = config.listeners;
    expect(welcome!.name).toBe("welcome");
    expect(welcome!.listen).toEqual([{ kind: "inet", host: "127.0.0.1", port: 8080, literal: true }]);
    expect(welcome!.routes[0]!.respond).toMatchObject({ status: 200, contentType: "text/html; charset=utf-8" });
    expect(welcome!.routes[0]!.respond!.body).toContain("switchyard is running");
  });

  test("--listen and --backend make a whole TCP proxy", () => {
    const config = load(null, { listen: ["127.0.0.1:7000", "[::1]:7000"], backend: "127.0.0.1:7001" });
    expect(config.source).toBe("<flags>");
    expect(config.listeners).toHaveLength(1);
    const [cli] = config.listeners;
    expect(cli).toMatchObject({ name: "cli", protocol: "tcp" });
    expect(cli!.listen.map((a) => (a.kind === "inet" ? `${a.host} ${a.port}` : a.path))).toEqual(["127.0.0.1 7000", "::1 7000"]);
    expect(cli!.routes).toHaveLength(1);
    expect(cli!.routes[0]!.upstreams[0]!.text).toBe("127.0.0.1:7001");
  });

  test("--listen takes its backend from TCP_BACKEND_ENDPOINT when --backend is absent", () => {
    const config = load(null, { listen: ["127.0.0.1:7000"] }, { TCP_BACKEND_ENDPOINT: "10.0.0.9:5432" });
    expect(config.listeners[0]!.routes[0]!.upstreams[0]!.text).toBe("10.0.0.9:5432");
  });

  test("--backend wins over TCP_BACKEND_ENDPOINT", () => {
    const config = load(null, { listen: ["127.0.0.1:7000"], backend: "127.0.0.1:7001" }, { TCP_BACKEND_ENDPOINT: "10.0.0.9:5432" });
    expect(config.listeners[0]!.routes[0]!.upstreams[0]!.text).toBe("127.0.0.1:7001");
  });

  test("--listen with --resolver needs no backend", () => {
    const config = load(null, { listen: ["127.0.0.1:7000"], resolver: "./r.ts" });
    expect(config.resolver).toBe("./r.ts");
    expect(config.listeners[0]!.routes).toEqual([]);
  });

  test("serve tcp builds the reference proxy's listeners from the environment", () => {
    const config = load(null, { mode: "tcp" }, { TCP_BACKEND_ENDPOINT: "10.0.0.5:6432", TCP_POSTGRES_PORT: "15432", TCP_MYSQL_PORT: "13306" });
    expect(config.source).toBe("<environment>");
    expect(config.listeners.map((l) => ({
      name: l.name,
      protocol: l.protocol,
      listen: l.listen,
      upstreams: l.routes.flatMap((r) => r.upstreams.map((u) => u.text)),
    }))).toEqual([
      { name: "postgres", protocol: "tcp", listen: [{ kind: "inet", host: "0.0.0.0", port: 15432, literal: true }], upstreams: ["10.0.0.5:6432"] },
      { name: "mysql", protocol: "tcp", listen: [{ kind: "inet", host: "0.0.0.0", port: 13306, literal: true }], upstreams: ["10.0.0.5:6432"] },
    ]);
  });

  test("serve tcp with an empty environment uses the reference proxy's defaults", () => {
    const config = load(null, { mode: "tcp" });
    expect(config.listeners.map((l) => [l.name, l.listen[0], l.routes[0]!.upstreams[0]!.text])).toEqual([
      ["postgres", { kind: "inet", host: "0.0.0.0", port: 5432, literal: true }, "127.0.0.1:5432"],
      ["mysql", { kind: "inet", host: "0.0.0.0", port: 3306, literal: true }, "127.0.0.1:5432"],
    ]);
  });

  test("TCP_BACKEND_ENDPOINT alone selects the tcp mode", () => {
    const config = load(null, {}, { TCP_BACKEND_ENDPOINT: "10.0.0.5:6432" });
    expect(config.source).toBe("<environment>");
    expect(config.listeners.map((l) => l.name)).toEqual(["postgres", "mysql"]);
  });

  test("TCP_SKIP_VALIDATION sets skipValidation on the tcp listeners", () => {
    const config = load(null, { mode: "tcp" }, { TCP_SKIP_VALIDATION: "true" });
    expect(config.listeners.map((l) => l.skipValidation)).toEqual([true, true]);
  });

  test.each<[string, Partial<ConfigFlags>, Env, string[]]>([
    ["a bad port variable", { mode: "tcp" }, { TCP_POSTGRES_PORT: "70000" }, ["TCP_POSTGRES_PORT: port out of range: 70000"]],
    ["two port variables on one port", { mode: "tcp" }, { TCP_POSTGRES_PORT: "3306" },
      ['TCP_MYSQL_PORT: duplicate listen address 0.0.0.0:3306 (already used by listener "postgres")']],
    ["a bad backend variable", { mode: "tcp" }, { TCP_BACKEND_ENDPOINT: "db" }, ['TCP_BACKEND_ENDPOINT: expected host:port, got "db"']],
    ["a bad --listen", { listen: ["127.0.0.1:7000", "nope"], backend: "127.0.0.1:7001" }, {}, ['--listen: expected host:port, got "nope"']],
    ["a bad --backend", { listen: ["127.0.0.1:7000"], backend: "[::1]" }, {}, ['--backend: expected [IPv6]:port, got "[::1]"']],
    ["a bad TCP_BACKEND_ENDPOINT under --listen", { listen: ["127.0.0.1:7000"] }, { TCP_BACKEND_ENDPOINT: "10.0.0.1:0" },
      ["TCP_BACKEND_ENDPOINT: port out of range: 0"]],
  ])("%s is reported against its origin", (_, f, env, expected) => {
    // Every line names the variable or flag; the first is the problem itself. (A bad backend is followed
    // today by a spurious "a route needs upstreams" line: see schema.test.ts.)
    const lines = errorLines(null, f, env);
    expect(lines.slice(0, expected.length)).toEqual(expected);
    const origin = expected[0]!.split(":")[0]!;
    expect(lines.every((line) => line.startsWith(`${origin}: `))).toBe(true);
  });
});

describe("precedence: flags > environment > file > defaults", () => {
  test("TCP_WORKERS=2 overrides the file; a bad value names TCP_WORKERS", () => {
    expect(load(validFile('  "workers": 1,'), {}, { TCP_WORKERS: "2" }).workers).toBe(2);
    expect(errorLines(validFile('  "workers": 1,'), {}, { TCP_WORKERS: "0" })).toEqual([
      "TCP_WORKERS: workers must be a whole number from 1 to 1024, got 0",
    ]);
  });

  test("--workers 1 wins over TCP_WORKERS=2", () => {
    expect(load(validFile(), { workers: "1" }, { TCP_WORKERS: "2" }).workers).toBe(1);
  });

  test("--workers 1 wins over a file's workers 2", () => {
    expect(load(validFile('  "workers": 2,'), { workers: "1" }).workers).toBe(1);
  });

  test("HTTP_WORKERS is used when TCP_WORKERS is unset", () => {
    expect(load(validFile(), {}, { HTTP_WORKERS: "auto" }).workers).toBe("auto");
  });

  test("a file's bad workers is reported at its line", () => {
    const path = validFile('  "workers": 0,');
    expect(errorLines(path)).toEqual([`${path}:2:3: workers must be a whole number from 1 to 1024, got 0`]);
  });

  test("TCP_SOCKMAP_ENABLED sets the relay, and --relay wins over it", () => {
    expect(load(validFile(), {}, { TCP_SOCKMAP_ENABLED: "1" }).relay).toBe("sockmap");
    expect(load(validFile(), { relay: "userspace" }, { TCP_SOCKMAP_ENABLED: "1" }).relay).toBe("userspace");
    expect(load(validFile(), {}, { TCP_SOCKMAP_ENABLED: "0" }).relay).toBe("auto");
    expect(load(validFile(), { relay: "uring" }, { TCP_SOCKMAP_ENABLED: "1" }).relay).toBe("uring");
  });

  test("PROXY_RESOLVER overrides the file's resolver, and --resolver overrides both", () => {
    const path = validFile('  "resolver": "/from/file.ts",');
    expect(load(path).resolver).toBe("/from/file.ts");
    expect(load(path, {}, { PROXY_RESOLVER: "/from/env.ts" }).resolver).toBe("/from/env.ts");
    expect(load(path, { resolver: "/from/flag.ts" }, { PROXY_RESOLVER: "/from/env.ts" }).resolver).toBe("/from/flag.ts");
  });

  test("TCP_SKIP_VALIDATION applies to a file's tcp listeners", () => {
    expect(load(validFile(), {}, { TCP_SKIP_VALIDATION: "yes" }).listeners[0]!.skipValidation).toBe(true);
    expect(load(validFile(), {}, { TCP_SKIP_VALIDATION: "false" }).listeners[0]!.skipValidation).toBe(false);
  });

  test("log flags override the file's log section, key by key", () => {
    const path = validFile('  "log": { "level": "debug", "format": "text", "access": "stdout" },');
    expect(load(path).log).toEqual({ level: "debug", format: "text", access: "stdout" });
    expect(load(path, { logLevel: "warn" }).log).toEqual({ level: "warn", format: "text", access: "stdout" });
    expect(load(path, { logFormat: "json" }).log).toEqual({ level: "debug", format: "json", access: "stdout" });
  });

  test("--admin overrides the file's admin address and keeps its token", () => {
    const path = validFile('  "admin": { "listen": "127.0.0.1:9901", "token": "secret" },');
    expect(load(path, { admin: "127.0.0.1:9999" }).admin).toEqual({
      listen: { kind: "inet", host: "127.0.0.1", port: 9999, literal: true }, token: "secret",
    });
  });

  test("--admin adds an admin API to a file without one", () => {
    expect(load(validFile(), { admin: "[::1]:9901" }).admin).toEqual({ listen: { kind: "inet", host: "::1", port: 9901, literal: true }, token: null });
  });

  test("flags override the embedded default too", () => {
    const config = load(null, { logLevel: "error", admin: "127.0.0.1:9911" });
    expect(config.source).toBe(EMBEDDED_SOURCE);
    expect(config.log.level).toBe("error");
    expect(config.admin!.listen).toMatchObject({ port: 9911 });
  });

  test.each<[string, Partial<ConfigFlags>, string]>([
    ["--workers 0", { workers: "0" }, "--workers: workers must be a whole number from 1 to 1024, got 0"],
    ["--workers many", { workers: "many" }, '--workers: workers must be a whole number from 1 to 1024, got "many"'],
    ["--relay warp", { relay: "warp" }, '--relay: relay must be one of auto, userspace, splice, sockmap, uring, got "warp"'],
    ["--log-level loud", { logLevel: "loud" }, '--log-level: level must be one of debug, info, warn, error, got "loud"'],
    ["--log-format xml", { logFormat: "xml" }, '--log-format: format must be one of text, json, got "xml"'],
    ["--admin nope", { admin: "nope" }, '--admin: expected host:port, got "nope"'],
    ["--admin on a host name", { admin: "admin.example:9901" }, '--admin: listen on an IP address, not a host name: "admin.example"'],
  ])("a bad value from a flag is reported as --flag: message (%s)", (_, f, expected) => {
    expect(errorLines(validFile(), f)).toEqual([expected]);
  });

  test("a bad flag value is reported against the flag even when the file is also wrong", () => {
    const path = validFile('  "workers": 0,', '  "relay": "fast",');
    expect(errorLines(path, { logLevel: "loud" })).toEqual([
      `${path}:2:3: workers must be a whole number from 1 to 1024, got 0`,
      `${path}:3:3: relay must be one of auto, userspace, splice, sockmap, uring, got "fast"`,
      '--log-level: level must be one of debug, info, warn, error, got "loud"',
    ]);
  });

  test.each<[string, Partial<ConfigFlags>]>([
    ["--listen", { listen: ["127.0.0.1:7000"] }],
    ["--backend", { backend: "127.0.0.1:7001" }],
  ])("%s together with -c is an error", (_, f) => {
    expect(errorLines(validFile(), f)).toEqual([
      "--listen/--backend describe a whole proxy of their own: use them without -c, or put the listener in the file",
    ]);
  });
});
