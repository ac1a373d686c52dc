/**
 * The TLS settings handed to Bun, built once per route when a configuration is applied (never per
 * connection): protocol versions, cipher suites, certificate, client-certificate verification, ALPN.
 * Defaults: TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE with AEAD ciphers (Mozilla "intermediate");
 * TLS 1.3's suites are all modern and left to the library.
 * @module
 */
import { readFileSync } from "node:fs";
import { constants } from "node:crypto";
import type { MtlsConfig, UpstreamTlsConfig } from "../config/types.ts";
import type { LoadedCert } from "./certs.ts";
import { log } from "../log/logger.ts";

// https://ssl-config.mozilla.org/ (intermediate, TLS 1.2 part)
export const TLS12_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");
/** No SSLv3, TLS 1.0 or 1.1. */
export const SECURE_OPTIONS = constants.SSL_OP_NO_SSLv3 | constants.SSL_OP_NO_TLSv1 | constants.SSL_OP_NO_TLSv1_1;

/** Bun's TLSOptions, the fields we use. */
export interface ServerTls {
  cert: string;
  key: string;
  ciphers: string;
  secureOptions: number;
  ca?: string;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  ALPNProtocols?: Uint8Array;
}

export function serverTls(cert: LoadedCert, mtls: MtlsConfig | null, alpn: readonly string[]): ServerTls {
  const tls: ServerTls = { cert: cert.cert, key: cert.key, ciphers: TLS12_CIPHERS, secureOptions: SECURE_OPTIONS };
  if (mtls) {
    const ca = readCa(mtls.ca);
    // An unreadable CA must not turn "require a client certificate" into "accept anyone".
    tls.ca = ca ?? "";
    tls.requestCert = true;
    tls.rejectUnauthorized = mtls.requireClientCert || ca === null;
  }
  if (alpn.length > 0) tls.ALPNProtocols = alpnWire(alpn);
  return tls;
}

export function upstreamTls(config: UpstreamTlsConfig, host: string) {
  const ca = config.ca ? readCa(config.ca) : null;
  return {
    serverName: config.serverName ?? host,
    rejectUnauthorized: config.verify,
    ...(ca !== null ? { ca } : {}),
  };
}

function readCa(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    log.warn("CA file cannot be read", { ca: path, error: (e as Error).message });
    return null;
  }
}

/** RFC 7301 §3.1 wire format (Bun takes ALPNProtocols as one buffer). */
export function alpnWire(list: readonly string[]): Uint8Array {
  const bytes: number[] = [];
  for (const p of list) bytes.push(p.length, ...[...p].map((c) => c.charCodeAt(0)));
  return new Uint8Array(bytes);
}
