/**
 * Test certificates, made at test time with openssl (no private key is committed): a CA, server
 * certificates for names and wildcards, and client certificates signed by the CA (or by another CA).
 */
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { tempDir } from "./proxy.ts";

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`);
}

export interface Pki {
  readonly dir: string;
  /** Path of the CA certificate. */
  readonly ca: string;
  /** Make NAME.pem/NAME.key signed by the CA (in `dir`, or `into`), for these DNS names (server) or as a client. */
  issue(name: string, sans: string[], options?: { client?: boolean; into?: string; cn?: string }): { cert: string; key: string };
}

export function makePki(caName = "switchyard test CA"): Pki {
  const dir = tempDir("switchyard-pki-");
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", `/CN=${caName}`, "-keyout", "ca.key", "-out", "ca.pem"], dir);
  return {
    dir,
    ca: join(dir, "ca.pem"),
    issue(name, sans, options = {}) {
      const into = options.into ?? dir;
      const key = join(into, `${name}.key`);
      const cert = join(into, `${name}.pem`);
      const ext = join(dir, `${name}.ext`);
      writeFileSync(ext, options.client
        ? "extendedKeyUsage=clientAuth\n"
        : `subjectAltName=${sans.map((s) => `DNS:${s}`).join(",")}\nextendedKeyUsage=serverAuth\n`);
      openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${options.cn ?? sans[0] ?? name}`,
        "-keyout", key, "-out", join(dir, `${name}.csr`)], dir);
      openssl(["x509", "-req", "-in", join(dir, `${name}.csr`), "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", cert], dir);
      return { cert, key };
    },
  };
}
