/**
 * JSONC parser that remembers where every key and value starts, so that errors found after parsing
 * (unknown key, wrong type) can still be reported as `FILE:LINE:COL: message`. Bun.JSONC.parse is not
 * used: its syntax-error positions are wrong. Grammar: RFC 8259 (https://www.rfc-editor.org/rfc/rfc8259)
 * plus `//` and `/* *\/` comments and one trailing comma before `]` or `}`; duplicate keys are an error.
 * @module
 */

/** A place in the source text. */
export interface SourcePosition {
  /** 1-based line number. A line ends at LF, CRLF or a lone CR. */
  line: number;
  /** 1-based column in UTF-16 code units; 1 is the first character of the line. */
  column: number;
  /** 0-based index into the text in UTF-16 code units (a leading BOM counts). */
  offset: number;
}

/** Path from the root to a value: object keys and array indexes, e.g. `["listeners", 0, "listen"]`. */
export type JsonPath = readonly (string | number)[];

/**
 * A JSONC syntax error. `message` is short and carries no position, so callers can print
 * `${file}:${error.line}:${error.column}: ${error.message}`.
 */
export class JsoncSyntaxError extends Error {
  /** 1-based line of the problem (for an unexpected end: the end of input). */
  readonly line: number;
  /** 1-based column of the problem, in UTF-16 code units. */
  readonly column: number;

  constructor(message: string, position: SourcePosition) {
    super(message);
    this.name = "JsoncSyntaxError";
    this.line = position.line;
    this.column = position.column;
  }
}

/** The result of {@link parseJsonc}: the value, and where each part of it was written. */
export interface ParsedJsonc {
  /** The plain JSON value: ordinary objects (with `Object.prototype`), arrays, strings, numbers, booleans, null. */
  value: unknown;
  /** Position of the value at path (e.g. `["listeners", 0, "listen"]`); the root is `[]`. Undefined if absent. */
  valueAt(path: JsonPath): SourcePosition | undefined;
  /** Position of the key (its opening quote) of the member at path; undefined for array items or absent paths. */
  keyAt(path: JsonPath): SourcePosition | undefined;
  /**
   * Best position for an error about path: its key if it has one, else its value, else the same for
   * the nearest existing ancestor. Never undefined (falls back to 1:1).
   */
  locate(path: JsonPath): SourcePosition;
}

/**
 * Parses a JSONC document.
 * @throws {JsoncSyntaxError} on any syntax error, duplicate key, or nesting deeper than 256 levels.
 */
export function parseJsonc(text: string): ParsedJsonc {
  const parser = new Parser(text);
  const value = parser.parseDocument();
  const positions = parser.positions;
  // Copies, so a caller mutating a result cannot corrupt later look-ups.
  const copy = (p: SourcePosition | undefined) => (p === undefined ? undefined : { ...p });
  return {
    value,
    valueAt: (path) => copy(positions.get(pathKey(path))?.value),
    keyAt: (path) => copy(positions.get(pathKey(path))?.key),
    locate(path) {
      for (let n = path.length; n >= 0; n--) {
        const found = positions.get(pathKey(path.slice(0, n)));
        if (found !== undefined) return { ...(found.key ?? found.value) };
      }
      return { line: 1, column: 1, offset: 0 };
    },
  };
}

// Far deeper than any real config; bounds recursion so a hostile file cannot overflow the stack.
const MAX_DEPTH = 256;

// RFC 8259 section 6: no leading zeros, no "+", no bare ".", no hex, no NaN/Infinity.
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const HEX4 = /^[0-9a-fA-F]{4}$/;

// RFC 8259 section 7: the two-character escapes.
const ESCAPES = new Map([
  ['"', '"'], ["\\", "\\"], ["/", "/"], ["b", "\b"], ["f", "\f"], ["n", "\n"], ["r", "\r"], ["t", "\t"],
]);

type Located = { key: SourcePosition | undefined; value: SourcePosition };

// JSON.stringify keeps ["a", 0] and ["a", "0"] and ["a.b"] vs ["a", "b"] apart.
const pathKey = (path: JsonPath): string => JSON.stringify(path);

const isWordChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24;

// Wider than a valid number on purpose, so "01", "0x1F" or "1.2.3" are reported whole.
const isNumberChar = (c: number): boolean => isWordChar(c) || c === 0x2e || c === 0x2b || c === 0x2d;

const isNewline = (c: number): boolean => c === 0x0a || c === 0x0d;

/** One pass over the text with a cursor; tracks the current line so positions cost nothing. */
class Parser {
  readonly positions = new Map<string, Located>();
  readonly #text: string;
  readonly #path: (string | number)[] = [];
  #pos = 0;
  #line = 1;
  #lineStart = 0;

  constructor(text: string) {
    this.#text = text;
    // A BOM is invisible in editors, so the character after it is column 1.
    if (text.charCodeAt(0) === 0xfeff) this.#pos = this.#lineStart = 1;
  }

  parseDocument(): unknown {
    const value = this.#value(0, undefined);
    this.#skipTrivia();
    if (this.#pos < this.#text.length) this.#unexpected();
    return value;
  }

  #at(offset: number): SourcePosition {
    // Only valid for offsets on the current line; callers never look across a line break.
    return { line: this.#line, column: offset - this.#lineStart + 1, offset };
  }

  #fail(message: string, at: SourcePosition = this.#at(this.#pos)): never {
    throw new JsoncSyntaxError(message, at);
  }

  #unexpected(): never {
    if (this.#pos >= this.#text.length) this.#fail("unexpected end of input");
    this.#fail(`unexpected ${JSON.stringify(this.#token())}`);
  }

  #expected(what: string): never {
    if (this.#pos >= this.#text.length) this.#fail("unexpected end of input");
    this.#fail(`expected ${what}`);
  }

  /** The token at the cursor, for messages: a whole word such as `NaN`, else one character. */
  #token(): string {
    const word = this.#run(isWordChar);
    if (word !== "") return word.length > 20 ? `${word.slice(0, 20)}…` : word;
    return String.fromCodePoint(this.#text.codePointAt(this.#pos) ?? 0);
  }

  #run(accept: (c: number) => boolean): string {
    let end = this.#pos;
    while (end < this.#text.length && accept(this.#text.charCodeAt(end))) end++;
    return this.#text.slice(this.#pos, end);
  }

  #newline(): void {
    const crlf = this.#text.charCodeAt(this.#pos) === 0x0d && this.#text.charCodeAt(this.#pos + 1) === 0x0a;
    this.#pos += crlf ? 2 : 1;
    this.#line++;
    this.#lineStart = this.#pos;
  }

  /** Skips whitespace and comments. */
  #skipTrivia(): void {
    const text = this.#text;
    while (this.#pos < text.length) {
      const c = text.charCodeAt(this.#pos);
      if (c === 0x20 || c === 0x09) this.#pos++;
      else if (isNewline(c)) this.#newline();
      else if (c === 0x2f && text.charCodeAt(this.#pos + 1) === 0x2f) {
        while (this.#pos < text.length && !isNewline(text.charCodeAt(this.#pos))) this.#pos++;
      } else if (c === 0x2f && text.charCodeAt(this.#pos + 1) === 0x2a) this.#skipBlockComment();
      else return;
    }
  }

  #skipBlockComment(): void {
    const open = this.#at(this.#pos);
    this.#pos += 2;
    for (;;) {
      if (this.#pos >= this.#text.length) this.#fail("unterminated comment", open);
      const c = this.#text.charCodeAt(this.#pos);
      if (c === 0x2a && this.#text.charCodeAt(this.#pos + 1) === 0x2f) {
        this.#pos += 2;
        return;
      }
      if (isNewline(c)) this.#newline();
      else this.#pos++;
    }
  }

  /** Parses the value at the cursor and records its position under the current path. */
  #value(depth: number, key: SourcePosition | undefined): unknown {
    this.#skipTrivia();
    const start = this.#at(this.#pos);
    this.positions.set(pathKey(this.#path), { key, value: start });
    const c = this.#text.charCodeAt(this.#pos);
    if (c === 0x7b) return this.#object(depth + 1, start);
    if (c === 0x5b) return this.#array(depth + 1, start);
    if (c === 0x22) return this.#string();
    if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e) return this.#number(start);
    const word = this.#run(isWordChar);
    const literal = word === "true" ? true : word === "false" ? false : word === "null" ? null : undefined;
    if (literal === undefined) this.#unexpected();
    this.#pos += word.length;
    return literal;
  }

  #object(depth: number, start: SourcePosition): Record<string, unknown> {
    if (depth > MAX_DEPTH) this.#fail(`nesting deeper than ${MAX_DEPTH} levels`, start);
    const object: Record<string, unknown> = {};
    this.#pos++;
    this.#skipTrivia();
    if (this.#consume("}")) return object;
    for (;;) {
      if (this.#text[this.#pos] !== '"') {
        const word = this.#run(isWordChar);
        if (word !== "") this.#fail(`unquoted key ${JSON.stringify(word)}`);
        this.#unexpected();
      }
      const keyAt = this.#at(this.#pos);
      const key = this.#string();
      if (Object.hasOwn(object, key)) this.#fail(`duplicate key ${JSON.stringify(key)}`, keyAt);
      this.#skipTrivia();
      if (!this.#consume(":")) this.#expected(`":" after key ${JSON.stringify(key)}`);
      this.#path.push(key);
      const value = this.#value(depth, keyAt);
      this.#path.pop();
      // Define, not assign: assigning "__proto__" would replace the prototype instead of adding a key.
      Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
      if (this.#separator("}")) return object;
    }
  }

  #array(depth: number, start: SourcePosition): unknown[] {
    if (depth > MAX_DEPTH) this.#fail(`nesting deeper than ${MAX_DEPTH} levels`, start);
    const array: unknown[] = [];
    this.#pos++;
    this.#skipTrivia();
    if (this.#consume("]")) return array;
    for (;;) {
      this.#path.push(array.length);
      array.push(this.#value(depth, undefined));
      this.#path.pop();
      if (this.#separator("]")) return array;
    }
  }

  /** After an item: true if the container closed (after at most one trailing comma), false if an item follows. */
  #separator(close: "]" | "}"): boolean {
    this.#skipTrivia();
    if (this.#consume(close)) return true;
    if (!this.#consume(",")) this.#expected(`"," or "${close}"`);
    this.#skipTrivia();
    return this.#consume(close);
  }

  /** Steps over `char` if it is at the cursor. */
  #consume(char: string): boolean {
    if (this.#text[this.#pos] !== char) return false;
    this.#pos++;
    return true;
  }

  #string(): string {
    const text = this.#text;
    const open = this.#at(this.#pos);
    let pos = this.#pos + 1;
    let chunk = pos;
    let out = "";
    for (;;) {
      if (pos >= text.length) this.#fail("unterminated string", open);
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        this.#pos = pos + 1;
        return out + text.slice(chunk, pos);
      }
      if (c < 0x20) {
        // A raw line break almost always means a missing closing quote.
        if (isNewline(c)) this.#fail("unterminated string", open);
        this.#fail("control character in string", this.#at(pos));
      }
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(chunk, pos);
      const escape = text[pos + 1];
      if (escape === undefined || isNewline(escape.charCodeAt(0))) this.#fail("unterminated string", open);
      if (escape === "u") {
        // Surrogate pairs need nothing special: each \uXXXX is one UTF-16 code unit, as in JSON.parse.
        const hex = text.slice(pos + 2, pos + 6);
        if (!HEX4.test(hex)) this.#fail('invalid escape "\\u", expected 4 hex digits', this.#at(pos));
        out += String.fromCharCode(Number.parseInt(hex, 16));
        pos += 6;
      } else {
        const decoded = ESCAPES.get(escape);
        if (decoded === undefined) this.#fail(`invalid escape "\\${escape}"`, this.#at(pos));
        out += decoded;
        pos += 2;
      }
      chunk = pos;
    }
  }

  #number(start: SourcePosition): number {
    const run = this.#run(isNumberChar);
    if (!NUMBER.test(run)) this.#fail(`invalid number ${JSON.stringify(run)}`, start);
    this.#pos += run.length;
    return Number(run);
  }
}
