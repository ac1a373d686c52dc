import { describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { nameCovers, sanNames } from "../../src/tls/certs.ts";
import { makePki } from "../helpers/certs.ts";
import { readFileSync } from "node:fs";

describe("nameCovers: a certificate name against a server name", () => {
  test("exact names", () => {
    expect(nameCovers("api.example.com", "api.example.com")).toBe(true);
    expect(nameCovers("api.example.com", "www.example.com")).toBe(false);
  });
  test("a wildcard covers exactly one label", () => {
    expect(nameCovers("*.example.com", "www.example.com")).toBe(true);
    expect(nameCovers("*.example.com", "a.b.example.com")).toBe(false);
    expect(nameCovers("*.example.com", "example.com")).toBe(false);
    expect(nameCovers("*.example.com", ".example.com")).toBe(false);
  });
});

test("sanNames reads the DNS SANs of a certificate, lower case", () => {
  const pki = makePki();
  const c = pki.issue("multi", ["API.example.com", "*.example.org"]);
  expect(sanNames(new X509Certificate(readFileSync(c.cert)))).toEqual(["api.example.com", "*.example.org"]);
});
