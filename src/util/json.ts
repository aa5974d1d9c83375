// Parsing user-written JSON (kernel specs, scenarios, splat policies):
// JSON.parse, plus a refusal of duplicate keys, which JSON.parse silently
// resolves to the last one (issue 26: `"expect": "V0", ..., "expect": "V4"`
// would run under V4 while the file reads V0). The duplicate check walks the
// syntax tree of @humanwhocodes/momoa (a maintained JSON parser with
// locations).

import { parse as parseTree, type AnyNode } from '@humanwhocodes/momoa';

/** A key that appears twice in one JSON object, with where (1-based line and column of the second). */
export interface DuplicateKey {
  key: string;
  /** field path of the object holding it, as lockstep prints fields: "", "source", "[2].ops[3]" */
  at: string;
  line: number;
  column: number;
}

/** The first duplicate key of a JSON text that parses, or null. Throws the parser's error on invalid JSON. */
export function firstDuplicateKey(text: string): DuplicateKey | null {
  const doc = parseTree(text, { mode: 'json', ranges: false, tokens: false });
  // an explicit stack, not recursion: a deeply nested file must not overflow
  const stack: { node: AnyNode; at: string }[] = [{ node: doc.body, at: '' }];
  while (stack.length) {
    const { node, at } = stack.pop()!;
    if (node.type === 'Object') {
      const seen = new Set<string>();
      for (const m of node.members) {
        const key = m.name.type === 'String' ? m.name.value : m.name.name;
        if (seen.has(key)) return { key, at, line: m.name.loc.start.line, column: m.name.loc.start.column };
        seen.add(key);
        stack.push({ node: m.value, at: at === '' ? key : `${at}.${key}` });
      }
    } else if (node.type === 'Array') {
      node.elements.forEach((e, i) => stack.push({ node: e.value, at: `${at}[${i}]` }));
    }
  }
  return null;
}

/**
 * JSON.parse(text), refusing a key that appears twice in one object: throws
 * a SyntaxError "duplicate key "K" in OBJECT at line L column C" (callers
 * already turn a SyntaxError into their "not valid JSON (...)" ConfigError).
 */
export function parseJsonStrict(text: string): unknown {
  const value: unknown = JSON.parse(text);
  const d = firstDuplicateKey(text);
  if (d !== null) throw new SyntaxError(`duplicate key ${JSON.stringify(d.key)} in ${d.at === '' ? 'the top-level object' : d.at} at line ${d.line} column ${d.column}; keep one`);
  return value;
}
