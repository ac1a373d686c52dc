/**
 * The binary as users run it: in an empty directory with an empty environment, `validate` on
 * broken files, `version`, `--help`, and flags for features that are not built yet.
 */
import { describe, expect, test } from "bun:test";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, runBinary, startProxy, tempDir, eventually } from "../helpers/proxy.ts";
import { connect, echoServer } from "../helpers/peers.ts";

test("the compiled binary relays traffic from an empty directory with an empty environment", async () => {
  const dir = tempDir("switchyard-empty-");
  const bin = join(dir, "switchyard");
  copyFileSync(BINARY, bin);
  // Files a Bun program would pick up from its working directory; the binary must ignore them.
  writeFileSync(join(dir, ".env"), "TCP_WORKERS=7\nSWITCHYARD_NATIVE=off\n");
  writeFileSync(join(dir, "bunfig.toml"), 'preload = ["./does-not-exist.ts"]\n');
  const echo = echoServer();
  const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`], { env: {}, cwd: dir, binary: bin });
  try {
    expect(p.stderr()).toContain("native library loaded"); // embedded .so found with no env, .env ignored
    const c = await connect(p.port);
    c.socket.write("from an empty room");
    await eventually(() => c.receivedText() === "from an empty room", 5000, "echo");
    c.socket.end();
    await c.closed;
  } finally {
    expect(await p.stop()).toBe(0);
    echo.stop();
  }
});

test("serve with no arguments runs the embedded default, which answers curl", async () => {
  const p = await startProxy(["serve"]);
  try {
    const res = Bun.spawnSync(["curl", "-s", "-i", "--max-time", "5", "http://127.0.0.1:8080/"]);
    const text = res.stdout.toString();
    expect(text).toStartWith("HTTP/1.1 200 OK");
    expect(text).toContain("switchyard is running");
    const health = await (await fetch("http://127.0.0.1:9901/health")).json();
    expect(health).toEqual({ status: "ok" });
  } finally {
    expect(await p.stop()).toBe(0);
  }
});

test("SWITCHYARD_NATIVE=off: no native library, a clear line at start, traffic still flows", async () => {
  const echo = echoServer();
  const p = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`], { env: { SWITCHYARD_NATIVE: "off" } });
  try {
    expect(p.stderr()).toContain("native library unavailable, using the userspace relay only reason=\"disabled by SWITCHYARD_NATIVE=off\"");
    const c = await connect(p.port);
    c.socket.write("fallback");
    await eventually(() => c.receivedText() === "fallback", 5000, "echo");
    c.socket.end();
  } finally {
    await p.stop();
    echo.stop();
  }
});

test("version names the native library and the engines usable here", async () => {
  const { code, stdout } = await runBinary(["version"]);
  expect(code).toBe(0);
  expect(stdout).toMatch(/^switchyard \d+\.\d+\.\d+/);
  expect(stdout).toContain("bun 1.4.5");
  expect(stdout).toContain("native library: loaded (ABI 5)");
  expect(stdout).toContain("userspace: usable");
  expect(stdout).toMatch(/  sockmap: (usable|not usable \(.+\))\n/);
  expect(stdout).toMatch(/  uring: (usable|not usable \(.+\))(\n|$)/);
  expect((await runBinary(["--version"])).stdout).toBe(stdout);
});

test("--help lists every command and flag of SPEC.md", async () => {
  const { code, stdout } = await runBinary(["--help"]);
  expect(code).toBe(0);
  for (const word of ["serve", "validate", "version", "--listen", "--backend", "--workers", "--relay", "--resolver", "--admin", "--log-level", "--log-format", "-c, --config"]) {
    expect(stdout).toContain(word);
  }
});

test("scripts/build.sh says what it is doing before the long Zig step, in two lines in all", async () => {
  // Rebuilds dist/switchyard from the same sources; the new file replaces the old by rename, so
  // binaries already running are not touched.
  const proc = Bun.spawn(["bash", "scripts/build.sh"], { cwd: join(import.meta.dir, "../.."), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect({ code, err }).toEqual({ code: 0, err: "" });
  const lines = out.trimEnd().split("\n");
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(/^build: compiling the native library with Zig( \(the first build takes a few minutes\))?\.\.\.$/);
  expect(lines[1]).toMatch(/^build: dist\/switchyard \(\S+, switchyard \S+ \S+\)$/);
}, 600_000);

describe("features not built yet say so in one line and exit 1", () => {
  const dir = tempDir("switchyard-not-built-");
  const suspended = join(dir, "suspended.jsonc");
  writeFileSync(suspended, `{ "listeners": [{ "listen": ["127.0.0.1:0"], "routes": [{ "upstreams": ["127.0.0.1:1"], "suspended": true }] }] }`);
  const cases: [string[], Record<string, string>, string][] = [
    [["serve", "-c", suspended], {}, "suspended routes is not built yet"],
  ];
  for (const [args, env, message] of cases) {
    test(args.join(" ") + " " + JSON.stringify(env), async () => {
      const { code, stderr } = await runBinary(args, { PATH: process.env.PATH!, ...env });
      expect(code).toBe(1);
      expect(stderr).toContain(message);
      expect(stderr.trim().split("\n")).toHaveLength(1);
    });
  }
  test("--relay userspace, auto, splice, sockmap and uring are accepted", async () => {
    for (const relay of ["userspace", "auto", "splice", "sockmap", "uring"]) {
      const { code } = await runBinary(["validate", "--relay", relay]);
      expect(code).toBe(0);
    }
  });
});

describe("validate reports FILE:LINE:COL for broken files", () => {
  const dir = tempDir("switchyard-validate-");
  const good = `{
  // a comment, and a trailing comma
  "listeners": [
    { "name": "pg", "listen": ["127.0.0.1:6432", "[::1]:6432"], "routes": [{ "upstreams": ["127.0.0.1:5432"] }] },
  ],
}`;
  const broken: [string, string, string][] = [
    ["syntax", `{\n  "listeners": [\n    { "name": "a" "listen": [] }\n  ]\n}`, '3:19: expected "," or "}"'],
    ["unknown-key", `{\n  "listeners": [{\n    "name": "a", "listen": ["127.0.0.1:1"],\n    "routes": [{ "upstreams": ["127.0.0.1:2"], "wieght": 3 }]\n  }]\n}`, '4:48: unknown key "wieght"'],
    ["wrong-type", `{\n  "listeners": [{\n    "listen": ["127.0.0.1:1"], "maxConnections": "many",\n    "routes": [{ "upstreams": ["127.0.0.1:2"] }]\n  }]\n}`, "3:32: maxConnections must be a whole number from 0 to 10000000, got \"many\""],
    ["bad-address", `{\n  "listeners": [{\n    "listen": ["127.0.0.1:99999"],\n    "routes": [{ "upstreams": ["127.0.0.1:2"] }]\n  }]\n}`, "3:16: port out of range: 99999"],
    ["v6-no-brackets", `{\n  "listeners": [{\n    "listen": ["::1:7000"],\n    "routes": [{ "upstreams": ["127.0.0.1:2"] }]\n  }]\n}`, "3:16: IPv6 addresses need brackets"],
    ["duplicate-listen", `{\n  "listeners": [\n    { "name": "a", "listen": ["127.0.0.1:7000"], "routes": [{ "upstreams": ["127.0.0.1:2"] }] },\n    { "name": "b", "listen": ["127.0.0.1:7000"], "routes": [{ "upstreams": ["127.0.0.1:2"] }] }\n  ]\n}`, '4:31: duplicate listen address 127.0.0.1:7000 (already used by listener "a")'],
    ["no-upstreams", `{\n  "listeners": [{ "listen": ["127.0.0.1:1"],\n    "routes": [ { "name": "empty" } ] }]\n}`, "3:17: a route needs upstreams (or respond)"],
    ["unclosed", `{\n  "listeners": [\n`, "3:1: unexpected end of input"],
  ];

  test("a good file: exit 0 and a one-line summary", async () => {
    const path = join(dir, "good.jsonc");
    writeFileSync(path, good);
    const { code, stdout } = await runBinary(["validate", "-c", path]);
    expect(code).toBe(0);
    expect(stdout).toBe(`${path}: OK (1 listener, 2 addresses, 1 route)\n`);
  });
  for (const [name, text, message] of broken) {
    test(name, async () => {
      const path = join(dir, `${name}.jsonc`);
      writeFileSync(path, text);
      const { code, stderr } = await runBinary(["validate", "-c", path]);
      expect(code).toBe(1);
      expect(stderr).toContain(`${path}:${message}`);
    });
  }
  test("a missing file", async () => {
    const path = join(dir, "missing.jsonc");
    const { code, stderr } = await runBinary(["validate", "-c", path]);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(`${path}:1:1: cannot read config file: no such file`);
  });
  test("every problem of a file in one run", async () => {
    const path = join(dir, "many.jsonc");
    writeFileSync(path, `{\n  "wokers": 2,\n  "listeners": [{ "listen": ["nope"], "routes": [{ "upstreams": ["127.0.0.1:2"], "balance": "fastest" }] }]\n}`);
    const { code, stderr } = await runBinary(["validate", "-c", path]);
    expect(code).toBe(1);
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(`${path}:2:3: unknown key "wokers"`);
  });
});

test("environment: TCP_BACKEND_ENDPOINT with --listen is a complete proxy; a flag beats the variable", async () => {
  const echo = echoServer();
  const other = echoServer();
  try {
    const p = await startProxy(["serve", "--listen", "127.0.0.1:0"], { env: { TCP_BACKEND_ENDPOINT: `127.0.0.1:${echo.port}` } });
    try {
      const c = await connect(p.port);
      c.socket.write("env");
      await eventually(() => c.receivedText() === "env", 5000, "echo");
      c.socket.end();
      await eventually(() => p.accessLog().length === 1, 5000, "access log");
      expect(p.accessLog()[0]!.upstream).toBe(`127.0.0.1:${echo.port}`);
    } finally {
      await p.stop();
    }
    const q = await startProxy(["serve", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${other.port}`], { env: { TCP_BACKEND_ENDPOINT: `127.0.0.1:${echo.port}` } });
    try {
      const c = await connect(q.port);
      c.socket.write("flag");
      await eventually(() => c.receivedText() === "flag", 5000, "echo");
      c.socket.end();
      await eventually(() => q.accessLog().length === 1, 5000, "access log");
      expect(q.accessLog()[0]!.upstream).toBe(`127.0.0.1:${other.port}`);
    } finally {
      await q.stop();
    }
  } finally {
    echo.stop();
    other.stop();
  }
});
