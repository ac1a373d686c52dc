/**
 * The sniff stage of listeners that route on what the client says first (tls, postgres): collect the
 * client's first bytes in one place (src/sniff/collect.ts), by reading them or, on tls listeners with
 * the native library, by peeking (src/proxy/hello-peek.ts), and hand them to the protocol's phase
 * until it has its facts. The listener's socket handlers are the relay's, wrapped so that (1) read
 * bytes go to the sniffer while SNIFFING, and (2) events of an accepted socket that now carries a
 * TLS socket are left to the TLS socket, which is `conn.client` from then on.
 * Time is bounded by handshakeTimeoutMs (the sweeper), size by MAX_SNIFF_BYTES (the collector).
 * @module
 */
import type { Socket, SocketHandler } from "bun";
import { Conn, HANDSHAKING, NOT_OURS, SNIFFING } from "./conn.ts";
import { ProtoState } from "./proto-state.ts";
import { CLIENT_HANDLERS } from "../relay/userspace.ts";
import { abort } from "./finish.ts";
import { helloPhase } from "../tls/stage.ts";
import { pgStartupPhase } from "../postgres/stage.ts";
import { peekHello } from "./hello-peek.ts";
import { peekWaitUnavailable } from "../native/peek-wait.ts";
import { nativeStatus } from "../native/index.ts";
import { log } from "../log/logger.ts";

/**
 * Begin sniffing: by peeking (src/proxy/hello-peek.ts), or with the client readable and its bytes
 * coming to {@link sniffData}.
 */
export function startSniff(conn: Conn): void {
  const protocol = conn.listener.config.protocol;
  conn.proto = new ProtoState(protocol === "postgres" ? "pg-startup" : "tls-hello");
  conn.flags |= SNIFFING | HANDSHAKING;
  if (sniffMethod(protocol) === "peek") peekHello(conn);
}

/**
 * tls listeners peek when the native library can wait on peeked sockets; postgres listeners always
 * read. On postgres, peeking buys nothing: its first message is an SSLRequest or GSSENCRequest that
 * the proxy answers itself and so must consume (the TLS that follows must not see those 8 bytes), a
 * CancelRequest or StartupMessage that JS sends on itself (about 100 bytes; the connection stays in
 * userspace anyway while the backend's BackendKeyData is watched), or a direct-TLS hello the proxy
 * terminates, where upgradeTLS reads either way.
 */
function sniffMethod(protocol: string): "peek" | "read" {
  if (protocol !== "tls") return "read";
  const why = peekWaitUnavailable();
  // Without the library the start-up warning covers this; with it, say once why it cannot be used.
  if (why !== null && why !== toldWhy && nativeStatus().loaded) log.warn("tls listeners read the ClientHello and replay it on passthrough: peeked sockets cannot be waited on", { reason: why });
  toldWhy = why;
  return why === null ? "peek" : "read";
}

let toldWhy: string | null = null;

function sniffData(conn: Conn, chunk: Uint8Array): void {
  conn.lastActive = performance.now();
  const p = conn.proto!;
  const full = p.first.push(chunk) === "full";
  if (p.phase === "tls-hello") helloPhase(conn, full);
  else pgStartupPhase(conn, full);
}

type Handlers = Omit<SocketHandler<Conn>, "open"> & { handshake?(s: Socket<Conn>, ok: boolean, error: Error | null): void };

const clientData = CLIENT_HANDLERS.data!;
const clientEnd = CLIENT_HANDLERS.end!;
const clientDrain = CLIENT_HANDLERS.drain!;
const clientClose = CLIENT_HANDLERS.close!;
const clientError = CLIENT_HANDLERS.error!;

/** Client handlers of sniffing listeners (accepted sockets and the TLS sockets made over them). */
export const SNIFF_HANDLERS: Handlers = {
  binaryType: "uint8array",
  data(s, chunk) {
    const conn = s.data;
    if (s !== conn.client || conn.flags & NOT_OURS) return;
    if (conn.flags & SNIFFING) return sniffData(conn, chunk);
    clientData(s, chunk);
  },
  drain(s) {
    if (s === s.data.client) clientDrain(s);
  },
  end(s) {
    const conn = s.data;
    if (s !== conn.client || conn.flags & NOT_OURS) return;
    // A client that stops before it has said enough to be routed: nothing to relay.
    if (conn.flags & SNIFFING) return abort(conn, conn.proto!.first.length > 0 ? "incomplete_handshake" : "client_closed");
    clientEnd(s);
  },
  close(s, error) {
    if (s === s.data.client) clientClose(s, error);
  },
  error(s, error) {
    if (s === s.data.client) clientError(s, error);
  },
};
