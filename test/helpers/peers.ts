/**
 * Real TCP peers for the relay tests, in the test process: an echo server, scriptable servers,
 * and a client that collects what it receives. All on loopback, all closed by the test.
 */
import type { Socket, TCPSocketListener } from "bun";

export interface Server {
  readonly port: number;
  readonly listener: TCPSocketListener<any>;
  stop(): void;
}

/** A server whose handlers are given; `port` is picked by the kernel. */
export function serve(handlers: Parameters<typeof Bun.listen>[0]["socket"], allowHalfOpen = true): Server {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: handlers as any, allowHalfOpen } as any) as TCPSocketListener<any>;
  return { port: listener.port, listener, stop: () => listener.stop(true) };
}

/** Echo every byte back, respecting backpressure (pause on a short write, resume on drain). */
export function echoServer(): Server {
  return serve({
    open(s: Socket<any>) { s.data = { pending: null as Uint8Array | null }; },
    data(s: Socket<any>, d: Uint8Array) {
      const n = s.write(d);
      if (n < d.length) { s.data.pending = d.subarray(Math.max(n, 0)); s.pause(); }
    },
    drain(s: Socket<any>) {
      const p = s.data.pending as Uint8Array | null;
      if (!p) return;
      const n = s.write(p);
      if (n < p.length) s.data.pending = p.subarray(Math.max(n, 0));
      else { s.data.pending = null; s.resume(); }
    },
    end(s: Socket<any>) { s.end(); },
  } as any);
}

export interface Client {
  socket: Socket<any>;
  received(): Uint8Array;
  receivedText(): string;
  readonly closed: Promise<{ error: string | null }>;
  ended: boolean;
}

/** Connect and collect everything received; `closed` resolves with the error code, if any. */
export async function connect(port: number, host = "127.0.0.1"): Promise<Client> {
  const chunks: Uint8Array[] = [];
  let resolveClosed!: (v: { error: string | null }) => void;
  const closed = new Promise<{ error: string | null }>((r) => (resolveClosed = r));
  let lastError: string | null = null;
  const client: Partial<Client> = { ended: false };
  const socket = await Bun.connect({
    hostname: host, port, allowHalfOpen: true,
    socket: {
      data(_s: unknown, d: Uint8Array) { chunks.push(d); },
      // Like most clients: close when the peer has nothing more to say.
      end(s: Socket<any>) { client.ended = true; s.end(); },
      error(_s: unknown, e: Error) { lastError = (e as any).code ?? e.message; },
      close(_s: unknown, e?: Error) { resolveClosed({ error: (e as any)?.code ?? lastError }); },
      connectError(_s: unknown, e: Error) { resolveClosed({ error: (e as any).code ?? e.message }); },
    },
  } as any);
  return Object.assign(client, {
    socket,
    closed,
    received: () => Buffer.concat(chunks),
    receivedText: () => Buffer.concat(chunks).toString(),
  }) as Client;
}

/** Write all of `bytes`, waiting for drain as needed. */
export async function writeAll(socket: Socket<any>, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    const n = socket.write(bytes.subarray(off));
    if (n < 0) throw new Error("socket closed while writing");
    off += n;
    if (off < bytes.length) await Bun.sleep(1);
  }
}

/** A loopback port the kernel just gave out and nobody listens on (for servers told their port). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}
