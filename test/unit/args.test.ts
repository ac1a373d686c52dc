import { describe, expect, test } from "bun:test";
import { HELP, parseCommand, UsageError } from "../../src/cli/args.ts";
import type { ConfigFlags } from "../../src/config/flags.ts";

const NO_FLAGS: ConfigFlags = {
  mode: null, listen: [], backend: null, workers: null, relay: null, resolver: null, admin: null, logLevel: null, logFormat: null,
};

function usageError(argv: string[]): string {
  try {
    parseCommand(argv);
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  throw new Error(`expected a UsageError for ${JSON.stringify(argv)}`);
}

describe("commands", () => {
  test("no arguments is serve with every flag at its default", () => {
    expect(parseCommand([])).toEqual({ kind: "serve", file: null, flags: NO_FLAGS });
  });

  test.each<[string[], ConfigFlags["mode"]]>([
    [["serve"], null],
    [["serve", "tcp"], "tcp"],
    [["serve", "http"], "http"],
    [["serve", "smtp"], "smtp"],
  ])("%p → serve, mode %p", (argv, mode) => {
    expect(parseCommand(argv)).toEqual({ kind: "serve", file: null, flags: { ...NO_FLAGS, mode } });
  });

  test("validate, with and without -c", () => {
    expect(parseCommand(["validate"])).toEqual({ kind: "validate", file: null, flags: NO_FLAGS });
    expect(parseCommand(["validate", "-c", "/etc/s.jsonc"])).toEqual({ kind: "validate", file: "/etc/s.jsonc", flags: NO_FLAGS });
    expect(parseCommand(["validate", "--config", "a.jsonc"])).toEqual({ kind: "validate", file: "a.jsonc", flags: NO_FLAGS });
  });

  test.each<[string[]]>([[["version"]], [["--version"]], [["-v"]], [["serve", "--version"]]])("%p → version", (argv) => {
    expect(parseCommand(argv)).toEqual({ kind: "version" });
  });

  test.each<[string[]]>([[["--help"]], [["-h"]], [["help"]], [["serve", "--help"]], [["validate", "-h"]]])("%p → help", (argv) => {
    expect(parseCommand(argv)).toEqual({ kind: "help" });
  });
});

describe("serve flags", () => {
  test.each<[string[], Partial<ConfigFlags> & { file?: string }]>([
    [["-c", "s.jsonc"], { file: "s.jsonc" }],
    [["--config", "s.jsonc"], { file: "s.jsonc" }],
    [["--config=s.jsonc"], { file: "s.jsonc" }],
    [["--listen", "127.0.0.1:7000"], { listen: ["127.0.0.1:7000"] }],
    [["--listen=[::1]:7000"], { listen: ["[::1]:7000"] }],
    [["--backend", "127.0.0.1:7001"], { backend: "127.0.0.1:7001" }],
    [["--workers", "4"], { workers: "4" }],
    [["--workers", "auto"], { workers: "auto" }],
    [["--relay", "auto"], { relay: "auto" }],
    [["--relay", "userspace"], { relay: "userspace" }],
    [["--relay", "splice"], { relay: "splice" }],
    [["--relay", "sockmap"], { relay: "sockmap" }],
    [["--relay", "uring"], { relay: "uring" }],
    [["--resolver", "./resolver.ts"], { resolver: "./resolver.ts" }],
    [["--admin", "127.0.0.1:9901"], { admin: "127.0.0.1:9901" }],
    [["--log-level", "debug"], { logLevel: "debug" }],
    [["--log-level", "error"], { logLevel: "error" }],
    [["--log-format", "json"], { logFormat: "json" }],
    [["--log-format", "text"], { logFormat: "text" }],
  ])("serve %p", (argv, expected) => {
    const { file = null, ...flags } = expected;
    expect(parseCommand(["serve", ...argv])).toEqual({ kind: "serve", file, flags: { ...NO_FLAGS, ...flags } });
  });

  test("--listen is repeatable and keeps its order", () => {
    const cmd = parseCommand(["serve", "--listen", "127.0.0.1:7000", "--listen", "[::1]:7000", "--listen", "unix:/run/s.sock"]);
    expect(cmd.kind === "serve" && cmd.flags.listen).toEqual(["127.0.0.1:7000", "[::1]:7000", "unix:/run/s.sock"]);
  });

  test("every flag at once, the mode after the flags", () => {
    const argv = [
      "serve", "--listen", "0.0.0.0:7000", "--backend", "10.0.0.2:7001", "--workers", "auto", "--relay", "userspace",
      "--resolver", "r.ts", "--admin", "127.0.0.1:9902", "--log-level", "warn", "--log-format", "json", "tcp",
    ];
    expect(parseCommand(argv)).toEqual({
      kind: "serve",
      file: null,
      flags: {
        mode: "tcp", listen: ["0.0.0.0:7000"], backend: "10.0.0.2:7001", workers: "auto", relay: "userspace",
        resolver: "r.ts", admin: "127.0.0.1:9902", logLevel: "warn", logFormat: "json",
      },
    });
  });

  test("flags are accepted before the command too", () => {
    expect(parseCommand(["-c", "x.jsonc", "validate"])).toEqual({ kind: "validate", file: "x.jsonc", flags: NO_FLAGS });
  });

  test("validate takes the config flags as well", () => {
    const cmd = parseCommand(["validate", "--workers", "2"]);
    expect(cmd).toEqual({ kind: "validate", file: null, flags: { ...NO_FLAGS, workers: "2" } });
  });

  test("values are passed through unvalidated: checking them is the configuration's job", () => {
    const cmd = parseCommand(["serve", "--relay", "warp", "--log-level", "loud", "--workers=-3"]);
    expect(cmd.kind === "serve" && cmd.flags).toMatchObject({ relay: "warp", logLevel: "loud", workers: "-3" });
  });
});

describe("usage errors", () => {
  test.each([
    [["serve", "--bogus"]],
    [["--listne", "127.0.0.1:1"]],
    [["serve", "-x"]],
  ])("unknown flag %p", (argv) => {
    expect(usageError(argv)).toContain("Unknown option");
  });

  test.each([
    [["serve", "--listen"]],
    [["serve", "--backend"]],
    [["validate", "-c"]],
  ])("a flag without its value %p", (argv) => {
    expect(usageError(argv)).toContain("argument missing");
  });

  test("a boolean flag given a value", () => {
    expect(() => parseCommand(["--help=yes"])).toThrow(UsageError);
  });

  test.each(["start", "run", "validte", "tcp", "Serve"])("unknown command %p", (name) => {
    expect(usageError([name])).toBe(`unknown command "${name}" (commands: serve, validate, version)`);
  });

  test.each(["tls", "postgres", "TCP", "udp"])("unknown serve mode %p", (mode) => {
    expect(usageError(["serve", mode])).toBe(`unknown serve mode "${mode}" (tcp, http or smtp)`);
  });

  test.each([
    [["serve", "tcp", "extra"], "extra"],
    [["validate", "file.jsonc"], "file.jsonc"],
  ])("an extra argument %p", (argv, extra) => {
    expect(usageError(argv)).toBe(`unexpected argument "${extra}"`);
  });

  test("error messages carry no node error-code prefix", () => {
    expect(usageError(["--nope"])).not.toMatch(/^TypeError|ERR_/);
  });
});

describe("help text", () => {
  test.each([
    "serve", "validate", "version", "--help", "tcp|http|smtp", "-c, --config", "--listen", "--backend", "--workers",
    "--relay", "--resolver", "--admin", "--log-level", "--log-format", "--version",
  ])("mentions %s", (word) => {
    expect(HELP).toContain(word);
  });

  test.each(["auto | userspace | splice | sockmap", "debug | info | warn | error", "text | json"])("lists the values %s", (values) => {
    expect(HELP).toContain(values);
  });
});
