import { describe, expect, test } from "bun:test";
import { systemdSockets } from "../../src/listen/systemd.ts";
import { socketKey } from "../../src/listen/socket-key.ts";

describe("systemdSockets (sd_listen_fds)", () => {
  test("fds from 3, grouped by LISTEN_FDNAMES in order", () => {
    const got = systemdSockets({ LISTEN_PID: "42", LISTEN_FDS: "3", LISTEN_FDNAMES: "edge:pg:edge" }, 42);
    expect(got).toEqual(new Map([["edge", [3, 5]], ["pg", [4]]]));
  });

  test("unnamed sockets are 'unknown'", () => {
    expect(systemdSockets({ LISTEN_PID: "7", LISTEN_FDS: "2" }, 7)).toEqual(new Map([["unknown", [3, 4]]]));
    expect(systemdSockets({ LISTEN_PID: "7", LISTEN_FDS: "2", LISTEN_FDNAMES: "a:" }, 7)).toEqual(new Map([["a", [3]], ["unknown", [4]]]));
  });

  test.each([
    ["another process's sockets", { LISTEN_PID: "41", LISTEN_FDS: "1" }],
    ["no LISTEN_PID", { LISTEN_FDS: "1" }],
    ["zero fds", { LISTEN_PID: "42", LISTEN_FDS: "0" }],
    ["garbage", { LISTEN_PID: "42", LISTEN_FDS: "x" }],
  ])("none: %s", (_, env) => {
    expect(systemdSockets(env, 42)).toBeNull();
  });
});

describe("socketKey", () => {
  test("an address is its text; port 0 is per listener", () => {
    expect(socketKey({ kind: "inet", host: "127.0.0.1", port: 80, literal: true }, "a")).toBe("127.0.0.1:80");
    expect(socketKey({ kind: "inet", host: "::1", port: 0, literal: true }, "a")).toBe("a/[::1]:0");
    expect(socketKey({ kind: "unix", path: "/run/s.sock" }, "a")).toBe("unix:/run/s.sock");
  });
});
