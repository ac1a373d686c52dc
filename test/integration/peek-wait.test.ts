/**
 * The peek waiter (src/native/peek-wait.ts) in this process against real loopback sockets: a notice
 * per arrival on a paused socket whose peeked bytes stay queued, none while nothing new comes, and
 * one saying "ended" at the client's FIN; the bytes are still all there for the read that follows.
 */
import { expect, test } from "bun:test";
import type { Socket } from "bun";
import { NOTICE, onArrivals, peekWaitUnavailable, unwatchArrivals, watchArrivals } from "../../src/native/peek-wait.ts";
import { peek } from "../../src/native/peek.ts";
import { eventually } from "../helpers/proxy.ts";
import { connect } from "../helpers/peers.ts";

test("a notice per arrival, none while peeked bytes only wait, ended at FIN; nothing consumed", async () => {
  expect(peekWaitUnavailable()).toBeNull();
  const notices: [number, number][] = [];
  onArrivals((token, bits) => notices.push([token, bits]));
  let server: Socket<unknown> | null = null;
  let read = "";
  const listener = Bun.listen({
    hostname: "127.0.0.1", port: 0,
    socket: {
      open(s: Socket<unknown>) { s.pause(); server = s; },
      data(_s: Socket<unknown>, d: Uint8Array) { read += new TextDecoder().decode(d); },
    },
  } as any);
  try {
    const c = await connect(listener.port);
    await eventually(() => server !== null, 5_000, "accept");
    const fd = (server as unknown as { fd: number }).fd;
    expect(watchArrivals(fd, 41)).toBeNull();
    c.socket.write("\x16\x03\x01");
    await eventually(() => notices.length === 1, 5_000, "the first notice");
    expect(notices[0]).toEqual([41, NOTICE.arrived]);
    expect(peek(fd, 64)).toEqual({ kind: "bytes", bytes: new Uint8Array([0x16, 3, 1]) });
    await Bun.sleep(50);
    expect(notices).toHaveLength(1); // edge-triggered: queued bytes alone do not ring again
    c.socket.write("more");
    await eventually(() => notices.length === 2, 5_000, "the second notice");
    c.socket.end();
    await eventually(() => notices.some(([, bits]) => (bits & NOTICE.ended) !== 0), 5_000, "the FIN notice");
    unwatchArrivals(fd);
    server!.resume();
    await eventually(() => read === "\x16\x03\x01more", 5_000, "the read after the peeks");
  } finally {
    listener.stop(true);
  }
});
