/**
 * The value-import graph of src/ has no cycle (issue "One pipeline, protocols as modules"): a module
 * that imports its caller back is how the old stages reached each other in a circle. Type-only
 * imports are left out (they vanish at build), so a module may name its caller's types.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../../src");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return path.endsWith(".ts") && !path.endsWith(".d.ts") ? [path] : [];
  });
}

/** import/export … from "./x.ts" statements whose bindings are not all types. */
export function valueImports(source: string): string[] {
  const out: string[] = [];
  const statement = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s*["']([^"']+)["']/g;
  for (const m of source.matchAll(statement)) {
    const [, , typeOnly, clause, spec] = m;
    if (typeOnly || !spec!.startsWith(".")) continue;
    const braces = /^\{([\s\S]*)\}$/.exec(clause!.trim());
    if (braces && braces[1]!.split(",").map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith("type "))) continue;
    out.push(spec!);
  }
  // Side-effect imports: import "./x.ts";
  for (const m of source.matchAll(/(?:^|\n)\s*import\s+["']([^"']+)["']/g)) if (m[1]!.startsWith(".")) out.push(m[1]!);
  return out;
}

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of files(SRC)) {
    const deps = valueImports(readFileSync(file, "utf8")).map((spec) => resolve(dirname(file), spec)).filter((p) => p.startsWith(SRC) && p.endsWith(".ts"));
    g.set(file, deps);
  }
  return g;
}

/** Every cycle found by depth-first search, each as the list of files around it. */
function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of g.get(node) ?? []) {
      if (state.get(next) === "open") found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of g.keys()) if (!state.has(node)) visit(node);
  return found;
}

test("the parser sees value imports and leaves type-only ones out", () => {
  const src = `import type { A } from "./a.ts";\nimport { type B, type C } from "./b.ts";\nimport { D, type E } from "./d.ts";\nexport { F } from "./f.ts";\nimport "./g.ts";\nimport x from "node:fs";`;
  expect(valueImports(src).sort()).toEqual(["./d.ts", "./f.ts", "./g.ts"]);
});

test("a cycle is found when there is one", () => {
  const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  expect(cycles(g)).toEqual([["a", "b", "c", "a"]]);
});

test("src/ has no value-import cycle", () => {
  const found = cycles(graph()).map((c) => c.map((f) => relative(SRC, f)).join(" → "));
  expect(found).toEqual([]);
});
