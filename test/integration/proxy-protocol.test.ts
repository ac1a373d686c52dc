/**
 * Route `proxyProtocol` with real peers on loopback: a recording TCP backend that reads the header
 * with src/proxy-protocol/parse.ts (tcp listeners, userspace and splice relays, and a tls listener
 * passing a ClientHello through), and Postfix's smtpd with `smtpd_upstream_proxy_protocol = haproxy`
 * behind smtp listeners (its log names the client's own address, not the proxy's).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startProxy, writeConfig, eventually, type RunningProxy } from "../helpers/proxy.ts";
import { serve, connect, type Server } from "../helpers/peers.ts";
import { fixture } from "../helpers/fixtures.ts";
import { parseProxyHeader } from "../../src/proxy-protocol/parse.ts";
import { postfixAvailable, startPostfix, swaks, type PostfixInstance } from "../helpers/smtp-peers.ts";

const HELLO = fixture("hello-openssl"); // openssl s_client -servername api.example.com

/** What each connection to the recorder sent, in order of arrival. */
let received: Uint8Array[][] = [];
let recorder: Server;
let proxy: RunningProxy;
let spliced: RunningProxy;
let postfix: PostfixInstance | null = null;

beforeAll(async () => {
  recorder = serve({
    open(s: any) { s.data = received.push([]) - 1; },
    data(s: any, d: Uint8Array) { received[s.data]!.push(new Uint8Array(d)); },
    end(s: any) { s.end(); },
  } as any);
  if (postfixAvailable()) postfix = await startPostfix("xc.example");
  const up = [`127.0.0.1:${recorder.port}`];
  const listeners = (suffix: string) => [
    { name: `v1${suffix}`, listen: "127.0.0.1:0", routes: [{ upstreams: up, proxyProtocol: "v1" }] },
    { name: `v2${suffix}`, listen: "127.0.0.1:0", routes: [{ upstreams: up, proxyProtocol: "v2" }] },
    { name: `none${suffix}`, listen: "127.0.0.1:0", routes: [{ upstreams: up }] },
    { name: `pass${suffix}`, listen: "127.0.0.1:0", protocol: "tls", routes: [{ match: { sni: "api.example.com" }, upstreams: up, proxyProtocol: "v2" }] },
  ];
  const smtp = postfix ? ["v1", "v2"].map((v) => ({
    name: `mx-${v}`, listen: "127.0.0.1:0", protocol: "smtp", smtp: { hostname: "mx.test" },
    routes: [{ upstreams: [`127.0.0.1:${postfix!.proxyPort}`], proxyProtocol: v }],
  })) : [];
  proxy = await startProxy(["serve", "-c", writeConfig({ relay: "userspace", log: { access: "stdout" }, listeners: [...listeners(""), ...smtp] })]);
  spliced = await startProxy(["serve", "-c", writeConfig({ relay: "splice", listeners: listeners("-splice") })]);
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await spliced?.stop();
  await postfix?.stop();
  recorder?.stop();
});

const portOf = (p: RunningProxy, i: number) => Number(p.addresses[i]!.slice(p.addresses[i]!.lastIndexOf(":") + 1));

/** Connect to listener `i`, send `bytes`, and return what the recorder got on that connection, with the client's port. */
async function through(p: RunningProxy, i: number, bytes: Uint8Array): Promise<{ got: Uint8Array; clientPort: number; proxyPort: number }> {
  const before = received.length;
  const c = await connect(portOf(p, i));
  c.socket.write(bytes);
  await eventually(() => received.length > before && Buffer.concat(received[before]!).length >= bytes.length, 5000, "bytes at the recorder");
  await Bun.sleep(50); // nothing more may come after the client's bytes
  const clientPort = c.socket.localPort;
  c.socket.end();
  return { got: Buffer.concat(received[before]!), clientPort, proxyPort: portOf(p, i) };
}

for (const [engine, which] of [["userspace", () => proxy], ["splice", () => spliced]] as const) {
  describe(`tcp and tls listeners, ${engine} relay`, () => {
    for (const [i, version] of [[0, 1], [1, 2]] as const) {
      test(`v${version}: the header first, naming the client and the listener's address, then the client's bytes`, async () => {
        const ping = new TextEncoder().encode("ping\r\n");
        const { got, clientPort, proxyPort } = await through(which(), i, ping);
        const h = parseProxyHeader(got);
        if (h.kind !== "header") throw new Error(`no header: ${JSON.stringify(h)} in ${Buffer.from(got).toString("hex")}`);
        expect(h.version).toBe(version);
        expect(h.src).toMatchObject({ ip: "127.0.0.1", port: clientPort });
        expect(h.dst).toMatchObject({ ip: "127.0.0.1", port: proxyPort });
        expect(got.subarray(h.length)).toEqual(ping);
      });
    }

    test("a route without proxyProtocol sends the client's bytes only", async () => {
      const { got } = await through(which(), 2, new TextEncoder().encode("ping\r\n"));
      expect(Buffer.from(got).toString()).toBe("ping\r\n");
    });

    test("tls passthrough: the header before the client's ClientHello", async () => {
      const { got, clientPort } = await through(which(), 3, HELLO);
      const h = parseProxyHeader(got);
      if (h.kind !== "header") throw new Error(`no header: ${JSON.stringify(h)}`);
      expect(h.src).toMatchObject({ port: clientPort });
      expect(got.subarray(h.length)).toEqual(HELLO);
    });
  });
}

describe("smtp routes to Postfix (smtpd_upstream_proxy_protocol = haproxy)", () => {
  for (const [i, v] of [[4, "v1"], [5, "v2"]] as const) {
    test.skipIf(!postfixAvailable())(`${v}: Postfix names the client's own address`, async () => {
      const ip = v === "v1" ? "127.0.0.8" : "127.0.0.9";
      const r = await swaks(portOf(proxy, i), ["--from", "s@x.test", "--to", "x@xc.example", "--helo", "client.test", "--local-interface", ip]);
      expect(r.exitCode).toBe(0);
      expect(r.output).toMatch(/250 2\.0\.0 Ok: queued as/);
      // The proxy connected from 127.0.0.1; the header told smtpd the client is `ip`, and the dialogue went on.
      const done = new RegExp(`disconnect from unknown\\[${ip.replaceAll(".", "\\.")}\\] ehlo=1 mail=1 rcpt=1 data=1 quit=1`);
      await eventually(() => done.test(postfix!.log()), 10_000, "postfix log");
      expect(postfix!.log()).toContain(`connect from unknown[${ip}]`);
      await eventually(() => proxy.accessLog().some((l) => l.listener === `mx-${v}` && l.reason === "done"), 5000, "access log");
    }, 30_000);
  }
});
