/**
 * The SMTP keys of the schema (src/config/smtp-schema.ts) and the route table's domain patterns
 * for match.ehlo / match.rcptDomain (src/route/table.ts).
 */
import { describe, expect, test } from "bun:test";
import { ConnFacts } from "../../src/protocol/facts.ts";
import { RouteTable } from "../../src/route/table.ts";
import { DEFAULT_MAX_COMMANDS_BEFORE_ROUTING, DEFAULT_MAX_MESSAGE_BYTES } from "../../src/config/smtp-schema.ts";
import type { RouteConfig } from "../../src/config/types.ts";
import { issues, minimal, valid } from "../helpers/schema.ts";

const smtp = (listener: Record<string, unknown> = {}, route: Record<string, unknown> = {}) => minimal({ protocol: "smtp", ...listener }, route);

describe("smtp schema", () => {
  test("defaults: hostname from the system, 50 MiB, TLS not required; xclient off", () => {
    const l = valid(smtp()).listeners[0]!;
    expect(l.handshakeTimeoutMs).toBe(300_000);
    expect(l.smtp).toMatchObject({ maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, requireTls: false, smtpUtf8: false, maxCommandsBeforeRouting: DEFAULT_MAX_COMMANDS_BEFORE_ROUTING });
    expect(l.smtp!.hostname.length).toBeGreaterThan(0);
    expect(l.routes[0]!.xclient).toBe(false);
  });

  test("RFC 5321 §4.5.3.2 timeouts: command 5 min, data block 3 min; idle above both on smtp listeners", () => {
    const l = valid(smtp()).listeners[0]!;
    expect(l.smtp).toMatchObject({ commandTimeoutMs: 300_000, dataTimeoutMs: 180_000 });
    expect(l.idleTimeoutMs).toBe(600_000);
    expect(valid(minimal()).listeners[0]!.idleTimeoutMs).toBe(60_000); // other protocols keep theirs
    const set = valid(smtp({ idleTimeoutMs: 1000, smtp: { commandTimeoutMs: 20_000, dataTimeoutMs: 10_000 } })).listeners[0]!;
    expect([set.idleTimeoutMs, set.smtp!.commandTimeoutMs, set.smtp!.dataTimeoutMs]).toEqual([1000, 20_000, 10_000]);
    expect(issues(smtp({ smtp: { commandTimeoutMs: 0 } }))[0]).toStartWith("listeners[0].smtp.commandTimeoutMs: ");
    expect(issues(smtp({ smtp: { dataTimeoutMs: "3m" } }))[0]).toStartWith("listeners[0].smtp.dataTimeoutMs: ");
  });

  test("SPEC.md's example listener is valid", () => {
    const l = valid(minimal({
      protocol: "smtp", defaultCert: { cert: "/c.pem", key: "/k.pem" },
      smtp: { hostname: "mx.example.com", maxMessageBytes: 52428800, requireTls: false },
      routes: [
        { match: { rcptDomain: ["b.example", "*.b.example"] }, upstreams: ["10.0.1.2:25"], xclient: true },
        { match: { ehlo: "*.Partner.Example." }, upstreams: ["10.0.1.3:25"] },
        { upstreams: ["10.0.1.4:25"] },
      ],
    })).listeners[0]!;
    expect(l.smtp!.hostname).toBe("mx.example.com");
    expect(l.routes[0]!.match!.rcptDomain).toEqual(["b.example", "*.b.example"]);
    expect(l.routes[0]!.xclient).toBe(true);
    expect(l.routes[1]!.match!.ehlo).toEqual(["*.partner.example"]); // normalised
  });

  test("refusals, each with its path", () => {
    expect(issues(minimal({ smtp: {} }))).toEqual(['listeners[0].smtp: smtp needs protocol "smtp" (this listener is "tcp")']);
    expect(issues(minimal({}, { xclient: true }))).toEqual(['listeners[0].routes[0].xclient: xclient needs protocol "smtp" (this listener is "tcp")']);
    expect(issues(minimal({}, { match: { rcptDomain: "b.example" } }))).toEqual(['listeners[0].routes[0].match.rcptDomain: match.rcptDomain needs protocol "smtp" (this listener is "tcp")']);
    expect(issues(smtp({ smtp: { hostname: "bad host" } }))).toEqual(['listeners[0].smtp.hostname: not a host name: "bad host" (it goes into the 220 banner)']);
    expect(issues(smtp({}, { match: { rcptDomain: "*b.example" } }))).toEqual(['listeners[0].routes[0].match.rcptDomain: not a domain or "*.domain" pattern: "*b.example"']);
    expect(issues(smtp({}, { terminateTls: true }))[0]).toStartWith("listeners[0].routes[0].terminateTls: an smtp listener ends TLS itself");
    expect(issues(smtp({ smtp: { colour: 1 } }))[0]).toContain("colour");
  });
});

function route(name: string, match: { ehlo?: string[]; rcptDomain?: string[] } | null): { config: RouteConfig } {
  return {
    config: {
      name, upstreams: [], balance: "round-robin", respond: null, rateLimit: null, terminateTls: false, cert: null, mtls: null, upstreamTls: null, xclient: false,
      match: match === null ? null : { clientCidr: [], sni: [], alpn: [], database: [], user: [], ehlo: match.ehlo ?? [], rcptDomain: match.rcptDomain ?? [] },
    },
  };
}

function facts(ehlo: string | null, rcptDomain: string | null): ConnFacts {
  const f = new ConnFacts();
  f.ehlo = ehlo;
  f.rcptDomain = rcptDomain;
  return f;
}

describe("domain patterns in the route table", () => {
  const table = new RouteTable([
    route("b", { rcptDomain: ["b.example", "*.b.example"] }),
    route("partner", { ehlo: ["*.partner.example"] }),
    route("both", { ehlo: ["gw.c.example"], rcptDomain: ["c.example"] }),
    route("default", null),
  ]);
  const pick = (ehlo: string | null, rcpt: string | null) => table.match("127.0.0.1", facts(ehlo, rcpt))?.config.name;

  test("exact and *. (exactly one label)", () => {
    expect(pick(null, "b.example")).toBe("b");
    expect(pick(null, "eu.b.example")).toBe("b");
    expect(pick(null, "a.eu.b.example")).toBe("default");
    expect(pick(null, "xb.example")).toBe("default");
    expect(pick("mx1.partner.example", "z.example")).toBe("partner");
    expect(pick("partner.example", "z.example")).toBe("default");
  });

  test("every field of a match must hold; a fact not learned matches no pattern", () => {
    expect(pick("gw.c.example", "c.example")).toBe("both");
    expect(pick("other.example", "c.example")).toBe("default");
    expect(pick(null, null)).toBe("default");
  });

  test("first route written wins when two match", () => {
    expect(pick("mx1.partner.example", "b.example")).toBe("b");
  });
});
