/**
 * A Debian nginx as a real HTTP/1.1 backend, on loopback, with its own temp prefix and config (no
 * daemon, no master process: one pid to stop). Its access log says what reached it (one line a
 * request: method, uri, and the forwarding headers it was given), so a test can check that a refused
 * request never did.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { tempDir } from "./proxy.ts";

export const NGINX = "/usr/sbin/nginx";

export interface Nginx {
  readonly pid: number;
  readonly port: number;
  readonly dir: string;
  /** The access-log lines so far (one per request that reached nginx). */
  requests(): string[];
  stop(): Promise<void>;
}

/** A free loopback port (bound, read and released: a test race we accept on a quiet machine). */
export function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/**
 * Start nginx answering `name` in its bodies. `locations` are extra server-block lines. The docroot
 * (`dir`/www) holds whatever the caller writes there before requests.
 */
export async function startNginx(name: string, locations = ""): Promise<Nginx> {
  const dir = tempDir("switchyard-nginx-");
  mkdirSync(join(dir, "logs"));
  mkdirSync(join(dir, "www"));
  const port = freePort();
  const conf = `
daemon off;
master_process off;
worker_processes 1;
error_log ${dir}/logs/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  log_format seen '$request_method $request_uri xff=[$http_x_forwarded_for] proto=[$http_x_forwarded_proto] xhost=[$http_x_forwarded_host] conn=[$http_connection] te=[$http_te] pa=[$http_proxy_authorization] len=[$content_length] peer=$remote_port';
  keepalive_requests 10000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:${port};
    access_log ${dir}/logs/access.log seen;
    root ${dir}/www;
    default_type text/plain;
    location = /nocontent { return 204; }
    location = /headers { return 200 "${name} xff=[$http_x_forwarded_for] proto=[$http_x_forwarded_proto] xhost=[$http_x_forwarded_host] conn=[$http_connection] ka=[$http_keep_alive] te=[$http_te] pa=[$http_proxy_authorization] x=[$http_x_drop_me]\\n"; }
    location /files/ { }
    ${locations}
    location / { return 200 "${name} $request_method $request_uri\\n"; }
  }
}`;
  const path = join(dir, "nginx.conf");
  writeFileSync(path, conf);
  const proc: Subprocess = Bun.spawn([NGINX, "-p", dir, "-c", path, "-e", `${dir}/logs/error.log`], { stdout: "ignore", stderr: "pipe" });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      s.end();
      break;
    } catch {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start: ${existsSync(`${dir}/logs/error.log`) ? readFileSync(`${dir}/logs/error.log`, "utf8") : ""}`);
      await Bun.sleep(20);
    }
  }
  const log = join(dir, "logs", "access.log");
  return {
    pid: proc.pid, port, dir,
    requests: () => (existsSync(log) ? readFileSync(log, "utf8").split("\n").filter((l) => l.length > 0) : []),
    async stop() {
      if (proc.exitCode === null) process.kill(proc.pid, "SIGTERM");
      await proc.exited;
    },
  };
}
