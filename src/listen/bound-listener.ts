/**
 * One listening address of this process: the Bun listener on it, the listener it serves, and a way
 * to stop accepting for a while without losing the socket (src/listen/fd-pressure.ts). Bun has no
 * pause: its listener's stop() closes the fd and leaves the poll. So a listener keeps a duplicate of
 * its socket (the keeper): while paused the socket stays open, the kernel keeps queueing clients, and
 * resuming listens on a new duplicate. Without a keeper (no native library) resuming binds the
 * address again, and clients queued while paused are refused when the socket closes.
 * @module
 */
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";
import type { Conn } from "../proxy/conn.ts";
import { formatSocketAddress } from "../net/address.ts";
import { socketFd } from "../net/socket-fd.ts";

export type Server = TCPSocketListener<Conn> | UnixSocketListener<Conn>;
export type Handlers = Parameters<Server["reload"]>[0]["socket"] & { open(client: Socket<Conn>): void };

/** How a paused listener listens again, and what it holds to do so. */
export interface Relisten {
  /** A new Bun listener on the same socket (or the same address); throws when it cannot yet. */
  again(handlers: Handlers): Server;
  /** Close what the paused state holds (the keeper); once, when the listener stops for good. */
  release(): void;
  /** The keeper's fd: the same socket while Bun's listener is stopped; -1 when there is none. */
  readonly fd: number;
}

export class BoundListener {
  #server: Server | null;
  #handlers: Handlers;
  #listener: string;
  #stopped = false;
  /** The address as bound (the kernel's port for port 0). */
  readonly bound: string;

  /**
   * `address`: as configured; `inherited`: listening on a socket someone else made (supervisor,
   * systemd), who logs and owns it; `relisten`: null when this listener cannot pause.
   */
  constructor(readonly address: string, readonly inherited: boolean, server: Server, listener: string, handlers: Handlers,
    readonly relisten: Relisten | null) {
    this.#server = server;
    this.#handlers = handlers;
    this.#listener = listener;
    const s = server as { hostname?: string; port?: number };
    this.bound = "port" in server && s.port !== undefined ? formatSocketAddress({ kind: "inet", host: s.hostname!, port: s.port, literal: true }) : address;
  }

  /** The name of the listener it serves now (a reload may point the address at another). */
  get listener(): string {
    return this.#listener;
  }

  get paused(): boolean {
    return this.#server === null && !this.#stopped;
  }

  /** The listening socket's fd (for a binary upgrade), or -1. */
  get fd(): number {
    return this.#server ? socketFd(this.#server) : (this.relisten?.fd ?? -1);
  }

  /** Serve another listener from now on (a reload); the socket stays open. */
  repoint(listener: string, handlers: Handlers): void {
    this.#listener = listener;
    this.#handlers = handlers;
    this.#server?.reload({ socket: handlers });
  }

  /** Stop accepting, keep the socket; false when this listener cannot pause. Connections carry on. */
  pause(): boolean {
    if (!this.relisten || !this.#server) return false;
    this.#server.stop(false);
    this.#server = null;
    return true;
  }

  /** Accept again; false (and still paused) when the socket cannot be listened on yet. */
  resume(): boolean {
    if (!this.paused) return true;
    try {
      this.#server = this.relisten!.again(this.#handlers);
      return true;
    } catch {
      return false;
    }
  }

  /** Stop for good; `closeActive`: close its open connections too. */
  stop(closeActive: boolean): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#server?.stop(closeActive);
    this.#server = null;
    this.relisten?.release();
  }
}
