/**
 * The pipeline's `serve` stage (ProtocolModule.serve), tried in-process with a line protocol of the
 * test's own that answers each line itself, as HTTP answers each request: the sniff reads the first
 * line, then the module owns the connection and gets every client event (data, drain, end, close);
 * the route stage never runs (the listener's only route points at a closed port). Real sockets on
 * loopback, the real pipeline.
 */
import { afterEach, expect, test } from "bun:test";
import type { Socket } from "bun";
import { readConfig } from "../../src/config/schema.ts";
import { Metrics } from "../../src/control/metrics.ts";
import { ProxyState } from "../../src/proxy/runtime.ts";
import { bindAddress } from "../../src/listen/listeners.ts";
import { abort } from "../../src/proxy/finish.ts";
import type { Conn } from "../../src/proxy/conn.ts";
import { NEED_MORE, ROUTE, type ProtocolModule } from "../../src/protocol/module.ts";
import { protocolModule } from "../../src/protocol/registry.ts";
import { AccessLog, type AccessRecord } from "../../src/log/access-log.ts";
import { freePort } from "../helpers/peers.ts";
import { eventually } from "../helpers/proxy.ts";

const events: string[] = [];

/** Each line "x" is answered "X"; "BYE" ends the connection. */
function answerLines(conn: Conn, text: string): void {
  for (const line of text.split("\n").filter((l) => l.length > 0)) {
    if (line === "BYE") return abort(conn, "said_bye");
    conn.client.write(line.toUpperCase() + "\n");
  }
}

const SERVING: ProtocolModule = {
  name: "tcp",
  speaksFirst: "client",
  newState: () => ({}),
  sniff(conn, collected) {
    const text = Buffer.from(collected.bytes()).toString();
    if (!text.includes("\n")) return NEED_MORE;
    conn.facts!.user = text.slice(0, text.indexOf("\n"));
    return ROUTE;
  },
  serve: {
    start(conn) {
      events.push(`start ${conn.facts!.user}`);
      answerLines(conn, Buffer.from(conn.intake!.first.bytes()).toString());
      conn.intake!.first.clear();
      conn.client.resume();
    },
    data(conn, chunk) {
      events.push("data");
      answerLines(conn, Buffer.from(chunk).toString());
    },
    drain() {},
    end(conn) {
      events.push("end");
      abort(conn, "client_closed");
    },
    close() {
      events.push("close");
    },
  },
};

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
  events.length = 0;
});

async function start(): Promise<{ port: number; records: AccessRecord[] }> {
  const port = await freePort();
  const closed = await freePort();
  const { config, issues } = readConfig({
    listeners: [{ name: "lines", listen: [`127.0.0.1:${port}`], protocol: "tcp", routes: [{ upstreams: [`127.0.0.1:${closed}`] }] }],
  }, "test", {});
  if (!config) throw new Error(JSON.stringify(issues));
  const records: AccessRecord[] = [];
  const accessLog = Object.assign(new AccessLog(), { write: (r: AccessRecord) => void records.push(r) });
  const state = new ProxyState(config, new Metrics(), null, accessLog, (p) => (p === "tcp" ? SERVING : protocolModule(p)));
  const listener = state.listeners[0]!;
  const bound = bindAddress(listener.config.listen[0]!, listener, "lines");
  cleanup.push(() => bound.stop(true));
  return { port, records };
}

async function client(port: number): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
  let got = "";
  let closed = false;
  const socket = await Bun.connect({
    hostname: "127.0.0.1", port,
    socket: { data: (_s, d) => void (got += Buffer.from(d).toString()), close: () => void (closed = true), end: (s) => void s.end() },
  });
  return { socket, received: () => got, closed: () => closed };
}

test("after the sniff, the module answers every message itself; no route is dialled", async () => {
  const p = await start();
  const c = await client(p.port);
  c.socket.write("alice\nfirst\n");
  await eventually(() => c.received() === "ALICE\nFIRST\n", 5000, "the first answers");
  c.socket.write("second\n");
  await eventually(() => c.received() === "ALICE\nFIRST\nSECOND\n", 5000, "a later message, answered by serve.data");
  c.socket.write("BYE\n");
  await eventually(() => c.closed() && p.records.length === 1, 5000, "closed and counted");
  expect(events).toEqual(["start alice", "data", "data", "close"]);
  expect(p.records[0]).toMatchObject({ reason: "said_bye", upstream: null, user: "alice" });
});

test("the client's FIN goes to the module; a second connection gets its own start (handlers are per listener, not per socket)", async () => {
  const p = await start();
  const a = await client(p.port);
  a.socket.write("a\n");
  await eventually(() => a.received() === "A\n", 5000, "a answered");
  const b = await client(p.port);
  b.socket.write("b\n");
  await eventually(() => b.received() === "B\n", 5000, "b answered");
  a.socket.end();
  await eventually(() => a.closed() && p.records.length === 1, 5000, "a finished");
  expect(events).toEqual(["start a", "start b", "end", "close"]);
  b.socket.end();
  await eventually(() => b.closed() && p.records.length === 2, 5000, "b finished");
});
