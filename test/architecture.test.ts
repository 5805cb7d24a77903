/**
 * The sans-IO rule, enforced: no file under src/ outside src/node/ may import sockets, OS, DNS or timer modules, or
 * read a clock or start a timer. Comments are ignored; string contents are ignored too, except import specifiers.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

const FORBIDDEN_MODULES = ['dgram', 'net', 'tls', 'os', 'dns', 'timers', 'timers/promises', 'dns/promises', 'perf_hooks'];
const FORBIDDEN_CALLS: readonly [RegExp, string][] = [
  [/\bsetTimeout\b/, 'setTimeout'],
  [/\bsetInterval\b/, 'setInterval'],
  [/\bsetImmediate\b/, 'setImmediate'],
  [/\bDate\s*\.\s*now\b/, 'Date.now'],
  [/\bperformance\s*\.\s*now\b/, 'performance.now'],
];

/**
 * Blanks comments and the contents of string and template literals (keeping their quotes, and keeping the text of
 * a string that directly follows `from`, `import(` or `require(` so module specifiers stay checkable). Template
 * `${...}` expressions are kept as code.
 */
function stripForScan(code: string): string {
  let out = '';
  let i = 0;
  const templateDepth: number[] = []; // brace depth at which each open `${` returns to its template
  let braces = 0;
  while (i < code.length) {
    const c = code[i]!;
    const next = code[i + 1];
    if (c === '/' && next === '/') {
      while (i < code.length && code[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = code.indexOf('*/', i + 2);
      const stop = end < 0 ? code.length : end + 2;
      out += code.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < code.length && code[j] !== c && code[j] !== '\n') j += code[j] === '\\' ? 2 : 1;
      const body = code.slice(i + 1, j);
      const keep = /(\bfrom|\bimport|\bimport\s*\(|\brequire\s*\()\s*$/.test(out);
      out += c + (keep ? body : ' '.repeat(body.length)) + c;
      i = j + 1;
      continue;
    }
    if (c === '`' || (c === '}' && templateDepth.length > 0 && templateDepth[templateDepth.length - 1] === braces)) {
      if (c === '}') templateDepth.pop();
      out += c;
      let j = i + 1;
      for (; j < code.length; j++) {
        if (code[j] === '\\') {
          j++;
          continue;
        }
        if (code[j] === '`') break;
        if (code[j] === '$' && code[j + 1] === '{') break;
      }
      out += code.slice(i + 1, j).replace(/[^\n]/g, ' ');
      if (code[j] === '$') {
        templateDepth.push(braces);
        out += '${';
        i = j + 2;
      } else {
        out += '`';
        i = j + 1;
      }
      continue;
    }
    if (c === '{') braces++;
    if (c === '}') braces--;
    out += c;
    i++;
  }
  return out;
}

/** Violations in one file's source text. */
function violations(code: string): string[] {
  const text = stripForScan(code);
  const found: string[] = [];
  const spec = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(spec)) {
    const name = m[1]!.replace(/^node:/, '');
    if (FORBIDDEN_MODULES.includes(name)) found.push(`imports ${m[1]}`);
  }
  for (const [re, label] of FORBIDDEN_CALLS) if (re.test(text)) found.push(`uses ${label}`);
  return found;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('architecture: sans-IO core', () => {
  it('no socket, OS, DNS or timer imports and no clocks or timers in src/ outside src/node/', () => {
    const files = tsFiles(src).filter((f) => !relative(src, f).startsWith(`node${sep}`));
    expect(files.length).toBeGreaterThan(5);
    const problems = files.flatMap((f) => violations(readFileSync(f, 'utf8')).map((v) => `${relative(root, f)}: ${v}`));
    expect(problems).toEqual([]);
  });

  it('the scanner catches what it must (so the check above can fail)', () => {
    expect(violations(`import { createSocket } from 'node:dgram';`)).toEqual(['imports node:dgram']);
    expect(violations(`import * as os from "os";`)).toEqual(['imports os']);
    expect(violations(`import 'node:net';`)).toEqual(['imports node:net']);
    expect(violations(`const t = await import('node:timers/promises');`)).toEqual(['imports node:timers/promises']);
    expect(violations(`const d = require('dns');`)).toEqual(['imports dns']);
    expect(violations(`export { lookup } from 'node:dns';`)).toEqual(['imports node:dns']);
    expect(violations(`const now = Date.now();`)).toEqual(['uses Date.now']);
    expect(violations(`const now = performance . now();`)).toEqual(['uses performance.now']);
    expect(violations(`setTimeout(f, 1);`)).toEqual(['uses setTimeout']);
    expect(violations('const x = `${setInterval(f)}`;')).toEqual(['uses setInterval']);
    expect(violations(`queueMicrotask(() => setImmediate(f));`)).toEqual(['uses setImmediate']);
  });

  it('comments and string contents are not code', () => {
    expect(violations(`// uses setTimeout and Date.now() here\nconst a = 1;`)).toEqual([]);
    expect(violations(`/* import x from 'node:dgram'; setInterval */ const b = 2;`)).toEqual([]);
    expect(violations(`const msg = 'never call setTimeout or Date.now() in the core';`)).toEqual([]);
    expect(violations('const msg = `no setTimeout ${1 + 1} here`;')).toEqual([]);
    expect(violations(`import { createHash } from 'node:crypto';\nimport { crc32 } from 'node:zlib';`)).toEqual([]);
    expect(violations(`const url = "http://example.org/"; const t = performanceNow();`)).toEqual([]);
  });
});
