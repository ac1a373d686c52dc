/**
 * Native accept (issue 17): a tcp listener whose routes need no bytes, with `relay: uring` or `auto`
 * (src/relay/engine.ts says why auto does), is accepted on by the uring engine instead of Bun. The
 * engine arms a multishot accept on the
 * listener's socket (the SO_REUSEPORT socket the supervisor made for this worker, or the one this
 * process made), each client comes to JS as an event (src/native/uring-accept.ts), the pipeline's
 * stages decide as for any tcp connection (src/proxy/pipeline.ts accept, with a stand-in client from
 * src/relay/uring-accept.ts), and the engine connects and relays. No Bun socket exists for such a
 * connection.
 *
 * Which listeners ({@link nativeAcceptRefusal}): the protocol reads nothing before routing and takes
 * no part afterwards (tcp), no route answers from the proxy (`respond`), speaks TLS to its
 * upstream or sends a PROXY header, no PROXY header is read from peers, the address is inet, the engine runs, and SWITCHYARD_NATIVE_ACCEPT is not `off` (the
 * opt-out: Bun accepts and hands the pair to the engine at connect, as before native accept).
 * Otherwise Bun accepts as before, and the start log says why (`native accept off`).
 *
 * Pausing (out of fds), stopping (drain, reload without the address) and resuming stop and restart
 * the engine's accept; connections queued in the kernel meanwhile stay there. A reload that makes
 * the listener need bytes hands the socket to Bun (a `BoundListener` on it) from then on.
 * @module
 */
import type { SocketAddress } from "../net/address.ts";
import type { ListenerRuntime } from "../proxy/runtime.ts";
import { accept } from "../proxy/pipeline.ts";
import { BoundListener, type Handlers, type Server } from "./bound-listener.ts";
import { relayEngine, uringRunning } from "../relay/engine.ts";
import { nativeAcceptUnavailable, onAcceptEvents, uringListen, uringRefuse, uringUnlisten } from "../native/uring-accept.ts";
import { nativeClient, nativeConnected } from "../relay/uring-accept.ts";
import { closeFd, localPort } from "../native/sockets.ts";
import { log } from "../log/logger.ts";
import { nativeEnv } from "../native/index.ts";

/** Not asked for (relay is neither uring nor auto): no log line. */
export const NOT_CONFIGURED = "relay is not uring or auto";

/** Why `listener`'s address is not accepted natively, or null when it is to be. */
export function nativeAcceptRefusal(listener: ListenerRuntime, address: SocketAddress): string | null {
  const relay = listener.state.config.relay;
  if (relay !== "uring" && relay !== "auto") return NOT_CONFIGURED;
  const m = listener.module;
  if (listener.readsFirst) return "the protocol reads the client's first bytes";
  if (m.upstreamHandshake || m.upstreamHandlers || m.serve || m.relayClientData) return "the protocol takes part after routing";
  if (address.kind !== "inet") return "a unix socket";
  if (listener.config.acceptProxyProtocol) return "trusted peers send a PROXY header first (acceptProxyProtocol)";
  for (const r of listener.routes) {
    if (r.config.respond) return `route ${r.config.name} answers from the proxy (respond)`;
    if (r.config.upstreamTls) return `route ${r.config.name} speaks TLS to its upstream`;
    if (r.config.proxyProtocol) return `route ${r.config.name} sends a PROXY header (written by JS at connect)`;
  }
  if (nativeEnv().SWITCHYARD_NATIVE_ACCEPT === "off") return "refused by SWITCHYARD_NATIVE_ACCEPT=off";
  relayEngine(listener.state.config); // decides (once) whether the uring engine runs
  if (!uringRunning()) return "the uring engine is not running";
  return nativeAcceptUnavailable();
}

let nextId = 1;
const byId = new Map<number, NativeAcceptListener>();

onAcceptEvents({
  accepted(token, id, ip, port, fd) {
    const l = byId.get(id);
    if (!l) {
      log.debug("native accept: a client accepted after its listener went to Bun is refused", { listener: id });
      return uringRefuse(token, false);
    }
    accept(l.runtime, nativeClient(token, ip, port, l.port, fd));
  },
  connected: nativeConnected,
  failed(kind, error) {
    const what = kind === "bell" ? "the uring engine's event bell stopped: nothing more is accepted natively" : `handling a ${kind} event failed`;
    log.error(`native accept: ${what}`, { error: (error as Error)?.stack ?? String(error) });
  },
});

/** A stand-in for Bun's server in BoundListener: the engine accepts, there is nothing of Bun's to stop. */
function engineServer(port: number, hostname: string): Server {
  return { port, hostname, stop() {}, reload() {} } as unknown as Server;
}

export class NativeAcceptListener extends BoundListener {
  readonly #id = nextId++;
  readonly #fd: number;
  #runtime: ListenerRuntime;
  #accepting = false;
  #stopped = false;
  /** Bun's listener on the socket once a reload made this listener need bytes; null while native. */
  #bun: BoundListener | null = null;
  readonly #toBun: (runtime: ListenerRuntime) => BoundListener;
  readonly port: number;

  /**
   * The engine accepts on `fd` (this object owns it, as Bun would) for `runtime`; `toBun` makes
   * the Bun listener on the same fd if a reload needs one. Throws when the engine refuses the socket.
   */
  constructor(address: string, inherited: boolean, fd: number, host: string, runtime: ListenerRuntime, handlers: Handlers, toBun: (runtime: ListenerRuntime) => BoundListener) {
    const p = localPort(fd);
    super(address, inherited, engineServer(p, host), runtime.config.name, handlers, null);
    this.port = p;
    this.#fd = fd;
    this.#runtime = runtime;
    this.#toBun = toBun;
    const refused = uringListen(fd, this.#id);
    if (refused) throw new Error(`the uring engine refused the listening socket: ${refused}`);
    this.#accepting = true;
    byId.set(this.#id, this);
    log.info("native accept", { listener: runtime.config.name, address: this.bound });
  }

  /** The listener runtime new connections are served with (a reload swaps it). */
  get runtime(): ListenerRuntime {
    return this.#runtime;
  }

  override get paused(): boolean {
    return this.#bun ? this.#bun.paused : !this.#accepting && !this.#stopped;
  }

  override get fd(): number {
    return this.#bun ? this.#bun.fd : this.#stopped ? -1 : this.#fd;
  }

  override get listener(): string {
    return this.#runtime.config.name;
  }

  /** A reload: new connections get `runtime`; one that needs bytes now goes to Bun. */
  repointTo(runtime: ListenerRuntime, handlers: Handlers, address: SocketAddress): void {
    if (this.#bun) return this.#bun.repoint(runtime.config.name, handlers);
    const why = nativeAcceptRefusal(runtime, address);
    this.#runtime = runtime;
    if (why === null) return;
    log.info("native accept off", { listener: runtime.config.name, address: this.bound, reason: why });
    if (this.#accepting) uringUnlisten(this.#id);
    this.#accepting = false;
    // Clients the engine accepted before this still come as events: they are served with `runtime`'s
    // routes natively only if it allowed it, so they are refused instead (src/native/uring-accept.ts).
    byId.delete(this.#id);
    this.#bun = this.#toBun(runtime);
  }

  override repoint(listener: string, handlers: Handlers): void {
    if (this.#bun) this.#bun.repoint(listener, handlers);
  }

  override pause(): boolean {
    if (this.#bun) return this.#bun.pause();
    if (!this.#accepting) return false;
    uringUnlisten(this.#id);
    this.#accepting = false;
    return true;
  }

  override resume(): boolean {
    if (this.#bun) return this.#bun.resume();
    if (this.#accepting || this.#stopped) return true;
    this.#accepting = uringListen(this.#fd, this.#id) === null;
    return this.#accepting;
  }

  override stop(closeActive: boolean): void {
    if (this.#bun) return this.#bun.stop(closeActive);
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#accepting) uringUnlisten(this.#id);
    this.#accepting = false;
    closeFd(this.#fd);
  }
}
