/**
 * Which certificate and settings a terminating route uses, resolved once per certificate: the
 * route's own certificate, else the listener's (by server name, src/tls/certs.ts). The settings
 * object handed to Bun is made once per certificate and reused for every connection.
 * @module
 */
import type { ListenerConfig, RouteConfig } from "../config/types.ts";
import { loadCert, type ListenerCerts, type LoadedCert } from "./certs.ts";
import { serverTls, type ServerTls } from "./options.ts";

export class RouteTls {
  readonly #own: LoadedCert | null;
  readonly #settings = new Map<LoadedCert, ServerTls>();
  readonly #alpn: readonly string[];

  /**
   * `route` null: the listener-level termination before any route is known (ProtocolModule
   * tlsBeforeRouting), selecting `listenerAlpn`.
   */
  constructor(readonly listener: ListenerConfig, readonly route: RouteConfig | null, readonly certs: ListenerCerts, listenerAlpn: readonly string[] = []) {
    this.#own = route?.cert ? loadCert(`${listener.name}/${route.name}`, route.cert) : null;
    // Selecting a protocol the upstream may not speak would break it; only what the route names.
    this.#alpn = route ? (route.match?.alpn ?? []) : listenerAlpn;
  }

  /** Settings for a connection to `sni`, or null when no certificate is available. */
  forName(sni: string | null): ServerTls | null {
    const cert = this.#own ?? this.certs.forName(sni);
    if (!cert) return null;
    let s = this.#settings.get(cert);
    if (!s) this.#settings.set(cert, (s = serverTls(cert, this.route?.mtls ?? this.listener.mtls, this.#alpn)));
    return s;
  }
}
