import { describe, expect, test } from "bun:test";
import { JsoncSyntaxError, parseJsonc, type JsonPath, type SourcePosition } from "../../src/config/jsonc.ts";

/** Parses text that must fail, returning the error as `LINE:COL: message`. */
function errorOf(text: string): string {
  try {
    parseJsonc(text);
  } catch (error) {
    if (!(error instanceof JsoncSyntaxError)) throw error;
    return `${error.line}:${error.column}: ${error.message}`;
  }
  throw new Error(`expected a syntax error for ${JSON.stringify(text)}`);
}

/** Line and column of an offset, computed independently of the parser (LF line ends only). */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  const lines = text.slice(0, offset).split("\n");
  return { line: lines.length, column: (lines.at(-1) ?? "").length + 1 };
}

describe("valid documents", () => {
  const samples = [
    "{}",
    "[]",
    "0",
    "-0",
    "1.5e-3",
    "-12.5E+2",
    "1e400",
    "123456789012345678901234567890",
    "true",
    "false",
    "null",
    '""',
    '"plain"',
    String.raw`"esc \" \\ \/ \b \f \n \r \t end"`,
    String.raw`"\u0041\u00e9\u4e2d"`,
    String.raw`"pair \ud83d\ude00 lone \udc00"`,
    '"raw unicode: é 中 😀 \u2028"',
    '{"a":1,"b":[true,false,null],"c":{"d":"e"}}',
    ' \t\r\n{ "a" : [ 1 , 2 ] }\r\n ',
    '[[[]],[{}],{"":""}]',
    '{"0":{"1":[0,1,2]},"":null}',
    '[1,-1,0.5,-0.5,1E2,1e-2,10,100]',
  ];
  for (const sample of samples) {
    test(`equals JSON.parse: ${sample.slice(0, 40)}`, () => {
      expect(parseJsonc(sample).value).toEqual(JSON.parse(sample));
    });
  }

  test("objects are ordinary objects", () => {
    const value = parseJsonc('{"a":{"b":1}}').value as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(value.a)).toBe(Object.prototype);
  });

  test("a leading BOM is skipped and does not count as a column", () => {
    const parsed = parseJsonc('\uFEFF{"a": 1}');
    expect(parsed.value).toEqual({ a: 1 });
    expect(parsed.valueAt([])).toEqual({ line: 1, column: 1, offset: 1 });
    expect(parsed.keyAt(["a"])).toEqual({ line: 1, column: 2, offset: 2 });
  });
});

describe("JSONC extensions", () => {
  test("line and block comments anywhere whitespace may be", () => {
    const text = [
      "// leading comment",
      "/* block",
      "   over lines */ {",
      '  "a" /* before colon */ : /* before value */ 1, // after value',
      '  "b": [ // in array',
      "    2 /* after item */ , 3",
      "  ] /* after array */",
      "} // trailing",
      "/* final */",
    ].join("\n");
    expect(parseJsonc(text).value).toEqual({ a: 1, b: [2, 3] });
  });

  test("comment markers inside strings are text", () => {
    expect(parseJsonc('{"url": "http://x/*y*/"}').value).toEqual({ url: "http://x/*y*/" });
  });

  test("one trailing comma before ] or }", () => {
    expect(parseJsonc('{"a": [1, 2,], "b": {"c": 3,},}').value).toEqual({ a: [1, 2], b: { c: 3 } });
    expect(parseJsonc("[1, // comment\n]").value).toEqual([1]);
    expect(parseJsonc("[[],\n/* x */]").value).toEqual([[]]);
  });

  test("comment-only line breaks: CRLF and lone CR", () => {
    expect(parseJsonc("// a\r\n[1]").valueAt([0])).toEqual({ line: 2, column: 2, offset: 7 });
    expect(parseJsonc("// a\r[1]").valueAt([0])).toEqual({ line: 2, column: 2, offset: 6 });
  });
});

describe("syntax errors report the exact line and column", () => {
  const cases: [name: string, text: string, expected: string][] = [
    ["missing colon on line 3", '{\n  "a": 1,\n  "b" 2\n}', '3:7: expected ":" after key "b"'],
    ["extra closing brace", '{"a": 1}}', '1:9: unexpected "}"'],
    ["unexpected end inside array", '{\n  "a": [1, 2\n', "3:1: unexpected end of input"],
    ["unexpected end after key", '{"a"', "1:5: unexpected end of input"],
    ["unexpected end after trailing comma", '{"a": 1,', "1:9: unexpected end of input"],
    ["empty document", "", "1:1: unexpected end of input"],
    ["comment-only document", "// nothing\n", "2:1: unexpected end of input"],
    ["string broken by newline after a comment", '{\n  // comment\n  "a": "abc\n}', "3:8: unterminated string"],
    ["unterminated string at end", '"abc', "1:1: unterminated string"],
    ["leading zero on line 3", "[\n  1,\n  01\n]", '3:3: invalid number "01"'],
    ["hex number", '{"a": 0x1F}', '1:7: invalid number "0x1F"'],
    ["fraction without digits", '{"a": 1.}', '1:7: invalid number "1."'],
    ["plus sign", "[+1]", '1:2: invalid number "+1"'],
    ["leading dot", "[.5]", '1:2: invalid number ".5"'],
    ["negative infinity", '{"a": -Infinity}', '1:7: invalid number "-Infinity"'],
    ["Infinity", '{"a": Infinity}', '1:7: unexpected "Infinity"'],
    ["raw tab in string", '{"a": "x\ty"}', "1:9: control character in string"],
    ["bad escape", '{"a": "\\x"}', '1:8: invalid escape "\\x"'],
    ["bad unicode escape", '{"a": "ok\\u12G4"}', '1:10: invalid escape "\\u", expected 4 hex digits'],
    ["empty array with comma", "[,]", '1:2: unexpected ","'],
    ["empty object with comma", "{,}", '1:2: unexpected ","'],
    ["double comma in array", "[1,,2]", '1:4: unexpected ","'],
    ["double comma before }", '{"a": 1,,}', '1:9: unexpected ","'],
    ["two trailing commas", "[1,,]", '1:4: unexpected ","'],
    ["missing comma between members", '{"a": 1 "b": 2}', '1:9: expected "," or "}"'],
    ["missing comma between items", "[1 2]", '1:4: expected "," or "]"'],
    ["missing value", '{"a" : }', '1:8: unexpected "}"'],
    ["unquoted key", "{a: 1}", '1:2: unquoted key "a"'],
    ["single-quoted key", "{'a': 1}", "1:2: unexpected \"'\""],
    ["misspelt literal after a multibyte character", '/* a\n b */ {\n "é": tru }', '3:7: unexpected "tru"'],
    ["NaN after an astral character (2 UTF-16 units)", '{"😀": NaN}', '1:8: unexpected "NaN"'],
    ["unterminated block comment at its start", '{\n  /* never closed\n  "a": 1\n}', "2:3: unterminated comment"],
    ["CRLF line ends", '{\r\n  "a": 1,\r\n  "b": @\r\n}', '3:8: unexpected "@"'],
    ["lone CR line ends", "[\r1,\r?]", '3:1: unexpected "?"'],
    ["second root value", "{} []", '1:4: unexpected "["'],
    ["lone slash", "[1] / 2", '1:5: unexpected "/"'],
    ["error after BOM", '\uFEFF{"a" 1}', '1:6: expected ":" after key "a"'],
  ];
  for (const [name, text, expected] of cases) {
    test(name, () => expect(errorOf(text)).toBe(expected));
  }

  test("the error is a JsoncSyntaxError whose message has no position", () => {
    let caught: unknown;
    try {
      parseJsonc("[1,,]");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(JsoncSyntaxError);
    expect(caught).toBeInstanceOf(Error);
    expect((caught as JsoncSyntaxError).name).toBe("JsoncSyntaxError");
    expect((caught as JsoncSyntaxError).message).toBe('unexpected ","');
  });
});

describe("duplicate keys", () => {
  test("are reported at the second key", () => {
    expect(errorOf('{\n  "name": 1,\n  "name": 2\n}')).toBe('3:3: duplicate key "name"');
  });

  test("are compared after unescaping", () => {
    expect(errorOf('{"a": 1, "\\u0061": 2}')).toBe('1:10: duplicate key "a"');
  });

  test("the same key in different objects is fine", () => {
    expect(parseJsonc('[{"a": 1}, {"a": 2, "b": {"a": 3}}]').value).toEqual([{ a: 1 }, { a: 2, b: { a: 3 } }]);
  });

  test("__proto__ twice is a duplicate too", () => {
    expect(errorOf('{"__proto__": 1, "__proto__": 2}')).toBe('1:18: duplicate key "__proto__"');
  });
});

describe("__proto__ safety", () => {
  test("__proto__ becomes an own property and leaves the prototype alone", () => {
    const text = '{"__proto__": {"polluted": true}, "a": {"__proto__": null}}';
    const value = parseJsonc(text).value as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.hasOwn(value, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(value, "__proto__")?.value).toEqual({ polluted: true });
    expect((value as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(value.a)).toBe(Object.prototype);
    expect(Object.keys(value.a as object)).toEqual(["__proto__"]);
    expect(value).toEqual(JSON.parse(text));
  });

  test("keys named like Object.prototype members are ordinary keys", () => {
    const value = parseJsonc('{"constructor": 1, "toString": 2, "hasOwnProperty": 3}').value;
    expect(value).toEqual({ constructor: 1, toString: 2, hasOwnProperty: 3 });
  });
});

describe("nesting limit", () => {
  test("256 levels are accepted", () => {
    expect(() => parseJsonc("[".repeat(256) + "]".repeat(256))).not.toThrow();
    expect(() => parseJsonc('{"a":'.repeat(255) + "{}" + "}".repeat(255))).not.toThrow();
  });

  test("the 257th level is an error at its bracket", () => {
    expect(errorOf("[".repeat(257) + "]".repeat(257))).toBe("1:257: nesting deeper than 256 levels");
    expect(errorOf('{"a":'.repeat(256) + "{}" + "}".repeat(256))).toBe("1:1281: nesting deeper than 256 levels");
  });

  test("hostile depth fails cleanly instead of overflowing the stack", () => {
    expect(() => parseJsonc("[".repeat(100_000))).toThrow(JsoncSyntaxError);
  });
});

describe("positions", () => {
  const text = [
    "{",
    "  // listeners",
    '  "listeners": [',
    '    { "listen": ":80", "routes": [] },',
    "    {",
    '      "listen": ":443",',
    '      "routes": [',
    '        { "match": { "sni": "a.example" }, "to": "10.0.0.1:443" }',
    "      ]",
    "    }",
    "  ],",
    '  "0": [7, [8, 9]]',
    "}",
  ].join("\n");
  const parsed = parseJsonc(text);
  const at = (line: number, column: number): { line: number; column: number } => ({ line, column });
  const lc = (p: SourcePosition | undefined) => (p === undefined ? undefined : at(p.line, p.column));

  test("root", () => {
    expect(parsed.valueAt([])).toEqual({ line: 1, column: 1, offset: 0 });
    expect(parsed.keyAt([])).toBeUndefined();
    expect(parsed.locate([])).toEqual({ line: 1, column: 1, offset: 0 });
  });

  test("keys and values of object members", () => {
    expect(lc(parsed.keyAt(["listeners"]))).toEqual(at(3, 3));
    expect(lc(parsed.valueAt(["listeners"]))).toEqual(at(3, 16));
    expect(lc(parsed.keyAt(["listeners", 0, "listen"]))).toEqual(at(4, 7));
    expect(lc(parsed.valueAt(["listeners", 0, "listen"]))).toEqual(at(4, 17));
    expect(lc(parsed.valueAt(["listeners", 0, "routes"]))).toEqual(at(4, 34));
    expect(lc(parsed.keyAt(["listeners", 1, "routes", 0, "match", "sni"]))).toEqual(at(8, 22));
  });

  test("array items have a value but no key", () => {
    expect(lc(parsed.valueAt(["listeners", 1]))).toEqual(at(5, 5));
    expect(parsed.keyAt(["listeners", 1])).toBeUndefined();
    expect(lc(parsed.valueAt(["listeners", 1, "routes", 0]))).toEqual(at(8, 9));
    expect(lc(parsed.valueAt(["0", 1, 1]))).toEqual(at(12, 16));
  });

  test("offsets index the text", () => {
    const listen = parsed.valueAt(["listeners", 1, "listen"]);
    expect(listen?.offset).toBe(text.indexOf('":443"'));
    expect(parsed.keyAt(["listeners", 1, "routes", 0, "to"])?.offset).toBe(text.indexOf('"to"'));
  });

  test("locate prefers the key, then the value", () => {
    expect(lc(parsed.locate(["listeners", 1, "routes", 0, "match"]))).toEqual(at(8, 11));
    expect(lc(parsed.valueAt(["listeners", 1, "routes", 0, "match"]))).toEqual(at(8, 20));
    expect(lc(parsed.locate(["listeners", 1]))).toEqual(at(5, 5));
  });

  test("locate falls back to the nearest existing ancestor", () => {
    expect(lc(parsed.locate(["listeners", 1, "routes", 0, "match", "port"]))).toEqual(at(8, 11));
    expect(lc(parsed.locate(["listeners", 1, "routes", 0, "nope", "deeper"]))).toEqual(at(8, 9));
    expect(lc(parsed.locate(["listeners", 7, "listen"]))).toEqual(at(3, 3));
    expect(parsed.locate(["missing"])).toEqual({ line: 1, column: 1, offset: 0 });
  });

  test("absent paths, and string keys are not array indexes", () => {
    expect(parsed.valueAt(["missing"])).toBeUndefined();
    expect(parsed.keyAt(["listeners", 0, "nope"])).toBeUndefined();
    expect(parsed.valueAt([0])).toBeUndefined();
    expect(parsed.valueAt(["0"])).toBeDefined();
    expect(parsed.valueAt(["listeners", "0"])).toBeUndefined();
  });

  test("locate falls back to 1:1 when nothing matches", () => {
    expect(parseJsonc("[]").locate(["a", 0])).toEqual({ line: 1, column: 1, offset: 0 });
  });

  test("returned positions are copies", () => {
    const first = parsed.valueAt(["listeners"]);
    if (first !== undefined) first.line = 99;
    expect(parsed.valueAt(["listeners"])?.line).toBe(3);
  });

  test("every value's position points at its first character and agrees with its offset", () => {
    const visit = (value: unknown, path: JsonPath): number => {
      const position = parsed.valueAt(path);
      expect(position).toBeDefined();
      if (position === undefined) return 0;
      expect(lineColumn(text, position.offset)).toEqual(at(position.line, position.column));
      const first = text[position.offset];
      let count = 1;
      if (Array.isArray(value)) {
        expect(first).toBe("[");
        value.forEach((item, index) => (count += visit(item, [...path, index])));
      } else if (typeof value === "object" && value !== null) {
        expect(first).toBe("{");
        for (const [key, item] of Object.entries(value)) {
          const keyPosition = parsed.keyAt([...path, key]);
          expect(text.slice(keyPosition?.offset, (keyPosition?.offset ?? 0) + key.length + 2)).toBe(`"${key}"`);
          count += visit(item, [...path, key]);
        }
      } else {
        expect(text.startsWith(JSON.stringify(value), position.offset)).toBe(true);
      }
      return count;
    };
    expect(visit(parsed.value, [])).toBe(17);
  });
});
