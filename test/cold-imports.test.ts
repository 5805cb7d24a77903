/**
 * What `import('icewire')` loads: the static value-import graph of src/index.ts (under verbatimModuleSyntax an
 * `import { X }` loads X's module even when X is used as a type only). mDNS (dns-packet) and TURN over TCP/TLS
 * (node:net, node:tls) load on first use, through `import()` in IceAgent.gather(); nothing may pull them back in.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(new URL('../src', import.meta.url).pathname);

/** Module specifiers a file loads when it is evaluated: value imports and re-exports, not `import type` nor `import()`. */
function staticValueImports(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st) && !st.importClause?.isTypeOnly) {
      const named = st.importClause?.namedBindings;
      const allTypes = named !== undefined && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly) && !st.importClause?.name;
      if (!allTypes) out.push((st.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier && !st.isTypeOnly) {
      const named = st.exportClause;
      const allTypes = named !== undefined && ts.isNamedExports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
      if (!allTypes) out.push((st.moduleSpecifier as ts.StringLiteral).text);
    }
  }
  return out;
}

/** Every module (src files by path relative to src/, packages and node: builtins by name) `entry` loads statically. */
function loadedBy(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [join(SRC, entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    const rel = file.slice(SRC.length + 1);
    if (seen.has(rel)) continue;
    seen.add(rel);
    for (const spec of staticValueImports(file)) {
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else seen.add(spec);
    }
  }
  return seen;
}

describe("what import('icewire/sdp-transform') loads", () => {
  it('sdp-transform, which only this entry point loads (see the walk below)', () => {
    expect(loadedBy('sip-offer-answer/sdp-transform.ts').has('sdp-transform')).toBe(true);
    expect(loadedBy('core.ts').has('sdp-transform')).toBe(false);
  });
});

describe("what import('icewire') loads", () => {
  const loaded = loadedBy('index.ts');

  it('reaches the agent (the walk works)', () => {
    expect(loaded.has('node/ice-agent.ts')).toBe(true);
    expect(loaded.has('checklist/agent-core.ts')).toBe(true);
    expect(loaded.has('node:dgram')).toBe(true);
  });

  it('leaves mDNS and TURN over TCP/TLS for first use', () => {
    for (const lazy of ['dns-packet', 'candidates/mdns.ts', 'node/mdns-socket.ts', 'node/turn-streams.ts', 'node:net', 'node:tls', 'sdp-transform', 'sip-offer-answer/sdp-transform.ts']) {
      expect(loaded.has(lazy), lazy).toBe(false);
    }
  });
});
