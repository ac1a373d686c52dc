import { describe, expect, test } from "bun:test";
import { compileHostPatterns, compilePathPatterns, hostPatternProblem, normaliseHost, pathOnly, pathPatternProblem } from "../../src/route/host-pattern.ts";

describe("normaliseHost: case, port and trailing dot are ignored", () => {
  test.each([
    ["Example.COM", "example.com"],
    ["example.com:8080", "example.com"],
    ["example.com.", "example.com"],
    ["Example.com.:443", "example.com"],
    ["[::1]:80", "[::1]"],
    ["[::1]", "[::1]"],
    ["10.0.0.1:80", "10.0.0.1"],
    ["", ""],
  ])("%p → %p", (raw, want) => expect(normaliseHost(raw)).toBe(want));
});

describe("host patterns (SPEC.md)", () => {
  const cases: [string, string, boolean][] = [
    ["api.example.com", "api.example.com", true],
    ["api.example.com", "API.Example.com", true], // patterns are normalised too
    ["api.example.com", "www.example.com", false],
    // `*` within one label
    ["cdn-*.example.com", "cdn-eu.example.com", true],
    ["cdn-*.example.com", "cdn-.example.com", true],
    ["cdn-*.example.com", "cdn-eu.x.example.com", false],
    ["cdn-*.example.com", "img-eu.example.com", false],
    ["a*b*c.x", "aZZbYYc.x", true],
    ["a*b*c.x", "abc.x", true],
    ["a*b*c.x", "acb.x", false],
    // leading `*.`: exactly one label
    ["*.example.com", "a.example.com", true],
    ["*.example.com", "a.b.example.com", false],
    ["*.example.com", "example.com", false],
    // `**`: one or more labels
    ["**.example.com", "a.example.com", true],
    ["**.example.com", "a.b.c.example.com", true],
    ["**.example.com", "example.com", false],
    ["cdn-*.**", "cdn-eu.example.com", true],
    ["cdn-*.**", "cdn-eu", false],
    ["cdn-*.**", "cdn-eu.a.b.c", true],
    ["a.**.z", "a.b.c.z", true],
    ["a.**.z", "a.z", false],
    ["**", "anything.at.all", true],
  ];
  test.each(cases)("%p against %p → %p", (pattern, host, want) => {
    expect(compileHostPatterns([normaliseHost(pattern)])(normaliseHost(host))).toBe(want);
  });

  test("a list matches when any pattern does", () => {
    const t = compileHostPatterns(["a.test", "*.b.test"]);
    expect(t("a.test")).toBe(true);
    expect(t("x.b.test")).toBe(true);
    expect(t("c.test")).toBe(false);
  });

  test.each([
    ["", "empty host pattern"],
    ["a..b", "empty label"],
    ["a**.b", '"**" must be a whole label'],
    ["a b", "not a host pattern"],
  ])("problem: %p", (p, why) => expect(hostPatternProblem(p)).toContain(why));
  test("good patterns have no problem", () => {
    for (const p of ["a.b", "*.a.b", "cdn-*.**", "**", "a.b."]) expect(hostPatternProblem(p)).toBeNull();
  });
});

describe("path patterns", () => {
  const cases: [string, string, boolean][] = [
    ["/ws", "/ws", true],
    ["/ws", "/ws/", false],
    ["/ws", "/wss", false],
    ["/v1/*", "/v1", true],
    ["/v1/*", "/v1/", true],
    ["/v1/*", "/v1/a/b", true],
    ["/v1/*", "/v10", false],
    ["/v1/*", "/v", false],
    ["/*", "/", true],
    ["/*", "/anything/here", true],
  ];
  test.each(cases)("%p against %p → %p", (pattern, path, want) => expect(compilePathPatterns([pattern])(path)).toBe(want));

  test("the query is not part of the path", () => {
    expect(pathOnly("/a/b?c=/d")).toBe("/a/b");
    expect(pathOnly("/a")).toBe("/a");
  });

  test.each([["v1", "starts with"], ["/a*b", "trailing"], ["/a/*/b", "trailing"], ["/a*", "trailing"]])("problem: %p", (p, why) => expect(pathPatternProblem(p)).toContain(why));
});
