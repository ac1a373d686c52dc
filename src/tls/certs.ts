/**
 * Certificates for terminating TLS: the route's, else the listener's defaultCert, else a file of the
 * listener's certDir whose SANs cover the server name. Files are read when a configuration is
 * applied (start and every reload), never per connection. A certificate that fails to load keeps
 * the last good one loaded under the same name in this process, and says so in the log; without
 * one, connections needing it are refused with `no_certificate`.
 * @module
 */
import { readFileSync, readdirSync } from "node:fs";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { join } from "node:path";
import type { CertPaths, ListenerConfig } from "../config/types.ts";
import { log } from "../log/logger.ts";

export interface LoadedCert {
  readonly cert: string;
  readonly key: string;
  /** DNS names of the certificate (subjectAltName), lower case; "*.example.com" for wildcards. */
  readonly names: readonly string[];
}

/** Last good certificate per name ("listener/route", "listener/default", "listener/dir/NAME"). */
const lastGood = new Map<string, LoadedCert>();

/** Read a pair of files; on failure fall back to the last good pair under `name` (or null). */
export function loadCert(name: string, paths: CertPaths): LoadedCert | null {
  try {
    const cert = readFileSync(paths.cert, "utf8");
    const key = readFileSync(paths.key, "utf8");
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error("the key does not belong to the certificate");
    const loaded = { cert, key, names: sanNames(x509) };
    lastGood.set(name, loaded);
    return loaded;
  } catch (e) {
    const kept = lastGood.get(name) ?? null;
    log.warn(kept ? "certificate failed to load; keeping the last good one" : "certificate failed to load; none loaded before",
      { certificate: name, cert: paths.cert, key: paths.key, error: (e as Error).message });
    return kept;
  }
}

/** The DNS SANs of a certificate, lower case; the subject CN when it has none. */
export function sanNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san) {
    return san.split(/,\s*/).filter((s) => s.startsWith("DNS:")).map((s) => s.slice(4).toLowerCase());
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

/** Does a certificate name ("a.example.com" or "*.example.com") cover `sni`? One label per wildcard. */
export function nameCovers(pattern: string, sni: string): boolean {
  if (!pattern.startsWith("*.")) return pattern === sni;
  const dot = sni.indexOf(".");
  return dot > 0 && sni.slice(dot) === pattern.slice(1);
}

/** The certificates of one listener, loaded once per configuration. */
export class ListenerCerts {
  readonly defaultCert: LoadedCert | null;
  /** certDir's pairs, in file-name order. */
  readonly dir: readonly LoadedCert[];

  constructor(config: ListenerConfig) {
    this.defaultCert = config.defaultCert ? loadCert(`${config.name}/default`, config.defaultCert) : null;
    this.dir = config.certDir ? loadDir(config.name, config.certDir) : [];
  }

  /** For a server name: an exact SAN in certDir, then a wildcard SAN, then the defaultCert. */
  forName(sni: string | null): LoadedCert | null {
    if (sni) {
      const exact = this.dir.find((c) => c.names.includes(sni));
      if (exact) return exact;
      const wild = this.dir.find((c) => c.names.some((n) => n.startsWith("*.") && nameCovers(n, sni)));
      if (wild) return wild;
    }
    return this.defaultCert ?? this.dir[0] ?? null;
  }
}

function loadDir(listener: string, dir: string): LoadedCert[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".pem")).sort();
  } catch (e) {
    log.warn("certDir cannot be read", { listener, certDir: dir, error: (e as Error).message });
    return [];
  }
  const out: LoadedCert[] = [];
  for (const f of files) {
    const base = f.slice(0, -4);
    const loaded = loadCert(`${listener}/dir/${base}`, { cert: join(dir, f), key: join(dir, `${base}.key`) });
    if (loaded) out.push(loaded);
  }
  return out;
}
