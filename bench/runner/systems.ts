/**
 * The backends (one loadgen echo, one loadgen sink, one nginx HTTP server, one redis-server when a
 * scenario needs it) and the systems under test
 * in front of them: direct, switchyard (each usable relay engine × worker count), HAProxy, nginx stream.
 * Every proxy is started fresh for each run, from a config generated in the work dir.
 * @module
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Child, freePort, waitPort } from "./procs.ts";

export interface Ctx {
  root: string;
  work: string;
  switchyard: string;
  loadgen: string;
  nproc: number;
}

export interface Backends { echo: string; sink: string; http: string; redis: string }

export interface Instance {
  address: string;
  /** Root pid of the proxy (memory is summed over it and its children); null for direct. */
  pid: number | null;
  stop(): Promise<void>;
}

export interface System {
  id: string;
  kind: "direct" | "switchyard" | "haproxy" | "nginx" | "relay";
  describe: string;
  /** Only these scenarios (absent: every scenario it can serve). */
  scenarios?: string[];
  start(backend: string): Promise<Instance>;
  /** Terminate TLS with the bench certificate and relay plaintext to `backend` (TLS scenarios); absent = not measured there. */
  startTls?(backend: string): Promise<Instance>;
}

/** The one certificate every TLS-terminating system serves (EC P-256, self-signed, made per run). */
export interface TlsFiles { cert: string; key: string; combined: string }

let tlsFiles: TlsFiles | null = null;
export function benchCert(ctx: Ctx): TlsFiles {
  if (tlsFiles) return tlsFiles;
  const dir = dirFor(ctx, "tls-cert");
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const r = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", "/CN=bench.test", "-addext", "subjectAltName=DNS:bench.test", "-keyout", key, "-out", cert], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl req: ${r.stderr.toString()}`);
  const combined = join(dir, "combined.pem");
  writeFileSync(combined, readFileSync(cert, "utf8") + readFileSync(key, "utf8")); // HAProxy's crt: chain and key in one file
  return (tlsFiles = { cert, key, combined });
}

let serial = 0;
function dirFor(ctx: Ctx, name: string): string {
  const dir = join(ctx.work, `${String(++serial).padStart(4, "0")}-${name.replace(/\W+/g, "_")}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------- backends

export async function startBackends(ctx: Ctx, started: Child[], needs: Set<keyof Backends>): Promise<Backends> {
  const serve = async (mode: string) => {
    const c = new Child(`loadgen serve ${mode}`, [ctx.loadgen, "serve", "--listen", "127.0.0.1:0", "--mode", mode], join(ctx.work, `backend-${mode}`));
    started.push(c);
    return (await c.waitFor(/^LISTENING (\S+)$/m))[1]!;
  };
  const echo = await serve("echo");
  const sink = await serve("sink");
  const dir = dirFor(ctx, "nginx-http-backend");
  const http = `127.0.0.1:${freePort()}`;
  writeFileSync(join(dir, "nginx.conf"), nginxHttpConfig(dir, http));
  const c = new Child("nginx http backend", nginxCommand(dir), join(dir, "nginx"));
  started.push(c);
  await waitPort(http, 10_000, c);
  c.adoptChildren();
  const redis = needs.has("redis") ? await startRedis(ctx, started) : "";
  return { echo, sink, http, redis };
}

/** redis-server on loopback, nothing persisted (the scenario measures the proxy, not the disk). */
async function startRedis(ctx: Ctx, started: Child[]): Promise<string> {
  const dir = dirFor(ctx, "redis-backend");
  const port = freePort();
  const c = new Child("redis-server", ["redis-server", "--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no",
    "--dir", dir, "--maxclients", "10000", "--protected-mode", "no"], join(dir, "redis"));
  started.push(c);
  const address = `127.0.0.1:${port}`;
  await waitPort(address, 10_000, c);
  return address;
}

// ---------------------------------------------------------------- configs

export function switchyardConfig(listen: string, backend: string): string {
  return JSON.stringify({
    log: { access: "off" },
    drainTimeoutMs: 1000,
    listeners: [{ name: "bench", listen: [listen], routes: [{ upstreams: [{ address: backend }] }] }],
  }, null, 2) + "\n";
}

/** A tls listener terminating with the bench certificate, relaying plaintext to the backend. */
export function switchyardTlsConfig(listen: string, backend: string, tls: TlsFiles): string {
  return JSON.stringify({
    log: { access: "off" },
    drainTimeoutMs: 1000,
    listeners: [{
      name: "bench-tls", listen: [listen], protocol: "tls", defaultCert: { cert: tls.cert, key: tls.key },
      routes: [{ terminateTls: true, upstreams: [{ address: backend }] }],
    }],
  }, null, 2) + "\n";
}

export function haproxyConfig(listen: string, backend: string, threads: number, options: { tls?: TlsFiles; spliceAuto?: boolean } = {}): string {
  const { tls, spliceAuto } = options;
  // splice-auto keeps pipes (2 fds each, maxconn/4 of them by default): fewer, so the fd need stays
  // under this machine's 20000 open-file limit. Their size is switchyard's (1 MiB; HAProxy's default
  // is the kernel's 64 KiB), so the splice engines compare like for like.
  return `global
  nbthread ${threads}
  maxconn 9000${spliceAuto ? "\n  maxpipes 256\n  tune.pipesize 1048576" : ""}

defaults
  mode tcp${spliceAuto ? "\n  option splice-auto" : ""}
  timeout connect 5s
  timeout client 60s
  timeout server 60s

frontend bench
  bind ${listen}${tls ? ` ssl crt ${tls.combined}` : ""}
  default_backend echo

backend echo
  server s1 ${backend}
`;
}

/** Debian builds the stream module as a dynamic module (package libnginx-mod-stream). */
const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

function nginxMain(dir: string): string {
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 19000;
events { worker_connections 16384; }
`;
}

export function nginxStreamConfig(dir: string, listen: string, backend: string): string {
  return `load_module ${STREAM_MODULE};
${nginxMain(dir)}
stream {
  server {
    listen ${listen};
    proxy_pass ${backend};
  }
}
`;
}

export function nginxHttpConfig(dir: string, listen: string): string {
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${dir}/${t};`).join("\n");
  return `${nginxMain(dir)}
http {
  access_log off;
${temp}
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  server {
    listen ${listen};
    location / {
      default_type text/plain;
      return 200 "hello from the bench backend\\n";
    }
    location /1k {
      default_type text/plain;
      return 200 "${"x".repeat(1023)}\\n";
    }
  }
}
`;
}

function nginxCommand(dir: string): string[] {
  return ["nginx", "-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log"), "-g", "daemon off;"];
}

// ---------------------------------------------------------------- systems

const direct: System = {
  id: "direct",
  kind: "direct",
  describe: "no proxy: the load generator talks to the backend itself (the limit)",
  start: async (backend) => ({ address: backend, pid: null, stop: async () => {} }),
};

/**
 * A variant of a switchyard system: `uring-bun-accept` is `--relay uring` with native accept off
 * (SWITCHYARD_NATIVE_ACCEPT=off: Bun accepts and dials, the engine relays from the connect), the
 * before/after of issue 17's native accept in one run.
 */
const VARIANTS: Record<string, { relay: string; env: Record<string, string> }> = {
  "uring-bun-accept": { relay: "uring", env: { SWITCHYARD_NATIVE_ACCEPT: "off" } },
};

function switchyard(ctx: Ctx, name: string, workers: number): System {
  const variant = VARIANTS[name];
  const engine = variant?.relay ?? name;
  const env = variant ? { ...(process.env as Record<string, string>), ...variant.env } : undefined;
  return {
    id: `switchyard/${name}/w${workers}`,
    kind: "switchyard",
    describe: `${variant ? `${Object.entries(variant.env).map(([k, v]) => `${k}=${v} `).join("")}` : ""}dist/switchyard serve -c FILE --relay ${engine} --workers ${workers} (access log off)`,
    start: async (backend) => {
      const dir = dirFor(ctx, `switchyard-${name}-${workers}`);
      const listen = `127.0.0.1:${freePort()}`;
      const cfg = join(dir, "switchyard.jsonc");
      writeFileSync(cfg, switchyardConfig(listen, backend));
      const c = new Child(`switchyard ${name} w${workers}`, [ctx.switchyard, "serve", "-c", cfg, "--relay", engine, "--workers", String(workers)], join(dir, "switchyard"), env);
      try {
        await c.waitFor(/switchyard ready/);
        await waitPort(listen, 10_000, c);
        if (workers > 1) c.adoptChildren(); // the workers: stopped by pid too (CPU and memory already sum descendants)
      } catch (e) { await c.stop(); throw e; }
      return { address: listen, pid: c.pid, stop: () => c.stop() };
    },
    startTls: async (backend) => {
      const dir = dirFor(ctx, `switchyard-tls-${engine}-${workers}`);
      const listen = `127.0.0.1:${freePort()}`;
      const cfg = join(dir, "switchyard.jsonc");
      writeFileSync(cfg, switchyardTlsConfig(listen, backend, benchCert(ctx)));
      const c = new Child(`switchyard tls ${engine} w${workers}`, [ctx.switchyard, "serve", "-c", cfg, "--relay", engine, "--workers", String(workers)], join(dir, "switchyard"));
      try {
        await c.waitFor(/switchyard ready/);
        await waitPort(listen, 10_000, c);
      } catch (e) { await c.stop(); throw e; }
      return { address: listen, pid: c.pid, stop: () => c.stop() };
    },
  };
}

function haproxy(ctx: Ctx, threads: number, spliceAuto = false): System {
  const tag = `t${threads}${spliceAuto ? "-splice" : ""}`;
  return {
    id: `haproxy/${tag}`,
    kind: "haproxy",
    describe: `haproxy -f cfg -db: mode tcp, nbthread ${threads}, maxconn 9000${spliceAuto ? ", option splice-auto, tune.pipesize 1048576" : ""}`,
    start: async (backend) => {
      const dir = dirFor(ctx, `haproxy-${tag}`);
      const listen = `127.0.0.1:${freePort()}`;
      const cfg = join(dir, "haproxy.cfg");
      writeFileSync(cfg, haproxyConfig(listen, backend, threads, { spliceAuto }));
      const c = new Child(`haproxy t${threads}`, ["haproxy", "-f", cfg, "-db"], join(dir, "haproxy"));
      try { await waitPort(listen, 10_000, c); } catch (e) { await c.stop(); throw e; }
      return { address: listen, pid: c.pid, stop: () => c.stop() };
    },
    startTls: async (backend) => {
      const dir = dirFor(ctx, `haproxy-tls-t${threads}`);
      const listen = `127.0.0.1:${freePort()}`;
      const cfg = join(dir, "haproxy.cfg");
      writeFileSync(cfg, haproxyConfig(listen, backend, threads, { tls: benchCert(ctx) }));
      const c = new Child(`haproxy tls t${threads}`, ["haproxy", "-f", cfg, "-db"], join(dir, "haproxy"));
      try { await waitPort(listen, 10_000, c); } catch (e) { await c.stop(); throw e; }
      return { address: listen, pid: c.pid, stop: () => c.stop() };
    },
  };
}

function nginxStream(ctx: Ctx): System {
  return {
    id: "nginx-stream/w1",
    kind: "nginx",
    describe: "nginx stream { server { listen; proxy_pass } }, worker_processes 1",
    start: async (backend) => {
      const dir = dirFor(ctx, "nginx-stream");
      const listen = `127.0.0.1:${freePort()}`;
      writeFileSync(join(dir, "nginx.conf"), nginxStreamConfig(dir, listen, backend));
      const c = new Child("nginx stream", nginxCommand(dir), join(dir, "nginx"));
      try { await waitPort(listen, 10_000, c); } catch (e) { await c.stop(); throw e; }
      c.adoptChildren();
      return { address: listen, pid: c.pid, stop: () => c.stop() };
    },
  };
}

/**
 * `loadgen relay`: blocking splice through a pipe, one thread per direction, nothing else. Not a
 * proxy (a thread pair per connection), so only in `bulk`: the floor of a splice relay's cost, which
 * separates the second TCP hop's price (relay vs direct) from a proxy's own (proxy vs relay).
 */
function spliceRelay(ctx: Ctx): System {
  return {
    id: "relay/splice",
    kind: "relay",
    describe: "loadgen relay: blocking splice(2) through a 1 MiB pipe, one thread per direction, no proxy logic (the floor of a splice relay)",
    scenarios: ["bulk"],
    start: async (backend) => {
      const c = new Child("loadgen relay", [ctx.loadgen, "relay", "--listen", "127.0.0.1:0", "--target", backend], join(dirFor(ctx, "relay"), "relay"));
      const address = (await c.waitFor(/^LISTENING (\S+)$/m))[1]!;
      return { address, pid: c.pid, stop: () => c.stop() };
    },
  };
}

/** The relay engines `switchyard version` lists as usable. */
export async function usableEngines(ctx: Ctx): Promise<{ usable: string[]; other: string[] }> {
  const p = Bun.spawnSync([ctx.switchyard, "version"]);
  const text = p.stdout.toString();
  const section = text.slice(text.indexOf("relay engines:"));
  const usable: string[] = [];
  const other: string[] = [];
  for (const m of section.matchAll(/^\s+(\w+):\s*(.+)$/gm)) (m[2]!.startsWith("usable") ? usable : other).push(`${m[1]}: ${m[2]}`);
  return { usable: usable.map((u) => u.split(":")[0]!), other };
}

/**
 * Every system to measure. switchyard variants are found by trying them: a variant that exits with
 * "not built yet" is skipped with a note, so engines and worker counts are picked up once they exist.
 */
export async function discoverSystems(ctx: Ctx, backends: Backends, wanted: (id: string) => boolean): Promise<{ systems: System[]; notes: string[]; problems: string[] }> {
  const systems: System[] = [direct, spliceRelay(ctx)];
  const notes: string[] = [];
  const problems: string[] = [];
  const { usable, other } = await usableEngines(ctx);
  for (const o of other) notes.push(`switchyard relay ${o} (from \`switchyard version\`): skipped`);
  if (usable.length === 0) problems.push("`switchyard version` lists no usable relay engine");
  const workerCounts = [...new Set([1, 2, ctx.nproc])].sort((a, b) => a - b);
  // auto is not an engine of its own (`switchyard version` lists engines), but a rule: measured too.
  const variants = usable.includes("uring") ? ["auto", "uring-bun-accept"] : ["auto"];
  for (const engine of [...usable, ...variants]) {
    for (const workers of workerCounts) {
      const s = switchyard(ctx, engine, workers);
      if (!wanted(s.id)) continue;
      try {
        const inst = await s.start(backends.echo);
        await inst.stop();
        systems.push(s);
      } catch (e) {
        const msg = String((e as Error).message);
        if (/not built yet/.test(msg)) notes.push(`switchyard --relay ${engine} --workers ${workers}: exits 1 "not built yet"; skipped`);
        else problems.push(`switchyard --relay ${engine} --workers ${workers} failed to start: ${msg}`);
      }
    }
  }
  for (const t of [...new Set([1, 2])]) systems.push(haproxy(ctx, t));
  // HAProxy's own kernel relay, against switchyard's splice and sockmap engines.
  systems.push(haproxy(ctx, 1, true));
  const streamBuiltIn = /--with-stream(?!=dynamic)(\s|$)/.test(Bun.spawnSync(["nginx", "-V"]).stderr.toString());
  if (existsSync(STREAM_MODULE) || streamBuiltIn) systems.push(nginxStream(ctx));
  else notes.push(`nginx-stream: skipped, the stream module is missing (${STREAM_MODULE}; Debian package libnginx-mod-stream)`);
  return { systems: systems.filter((s) => wanted(s.id)), notes, problems };
}

/** Config files for the startup-time comparison (nothing is started from them). */
export function startupConfigs(ctx: Ctx): { switchyard: string; haproxy: string; nginxDir: string | null } {
  const dir = dirFor(ctx, "startup");
  const swCfg = join(dir, "switchyard.jsonc");
  writeFileSync(swCfg, switchyardConfig("127.0.0.1:1", "127.0.0.1:2"));
  const haCfg = join(dir, "haproxy.cfg");
  writeFileSync(haCfg, haproxyConfig("127.0.0.1:1", "127.0.0.1:2", 1));
  let nginxDir: string | null = null;
  if (existsSync(STREAM_MODULE)) {
    nginxDir = dir;
    writeFileSync(join(dir, "nginx.conf"), nginxStreamConfig(dir, "127.0.0.1:1", "127.0.0.1:2"));
  }
  return { switchyard: swCfg, haproxy: haCfg, nginxDir };
}

export { nginxCommand };
