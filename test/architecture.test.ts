/**
 * The layering of src/, enforced (docs/architecture.md, "Layers"; the design is agent-rooms.md §2).
 *
 * Three rules, each checked on the TypeScript syntax tree of every file (so comments and strings never count):
 * 1. Layers: every relative import (`import`, `import type`, `export ... from`, `import()`) resolves to a room,
 *    and a room imports only its own room and rooms on lower floors, minus its `never` list, plus its listed
 *    exceptions. Type-only imports count as imports unless a room allows them by `typeOnly`.
 * 2. Node modules: outside src/node/ and src/cli/ (the IO rooms) the only `node:` imports are the pure computations of NODE_ALLOWED, by name.
 *    Other packages need a `packages` entry in the room's row.
 * 3. No clocks, timers or ambient randomness outside the IO rooms (src/testing/ too: it draws from a seeded PRNG).
 *
 * Besides, value imports between files form no cycle. The checkers take (path, source text), so the self-tests
 * below feed them synthetic files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'src');

// ---- the table ----------------------------------------------------------------------------------------------

/** A room: a folder of src/ or a group of root files, on one floor. */
interface Room {
  readonly floor: number;
  /** Lower rooms it must not import even though they are below it. */
  readonly never?: readonly string[];
  /** Rooms on its own or a higher floor it may import anyway (value and type imports). */
  readonly may?: readonly string[];
  /** Rooms it may import with `import type` only (no runtime edge, so no load-order cycle). */
  readonly typeOnly?: readonly string[];
  /** npm packages it may import (builtins are rule 2's business). */
  readonly packages?: readonly string[];
}

/**
 * Floors run upward; an arrow may only point down. candidates/ and turnclient/ share floor 4 and may see each
 * other's types (a relay candidate's shape, a TURN server config) but never each other's code, so either can be
 * tested and loaded without the other.
 */
const ROOMS: Readonly<Record<string, Room>> = {
  values: { floor: 1 },
  machine: { floor: 2 },
  stun: { floor: 3 },
  candidates: { floor: 4, typeOnly: ['turnclient'], packages: ['dns-packet'] },
  turnclient: { floor: 4, typeOnly: ['candidates'] },
  checklist: { floor: 5, never: ['turnclient'] },
  'sip-offer-answer': { floor: 5, never: ['turnclient'], typeOnly: ['checklist'], packages: ['sdp-transform'] },
  agent: { floor: 6 },
  testing: { floor: 6, may: ['agent'], never: ['node'] },
  trace: { floor: 6 },
  node: { floor: 7, never: ['testing'], packages: ['eventemitter3'] },
  'facade-core': { floor: 8, never: ['node', 'testing'] },
  'facade-index': { floor: 8, never: ['testing'] },
  cli: { floor: 9 },
};

/** Folders of src/ that are rooms of their own name. */
const FOLDER_ROOMS = new Set(['stun', 'candidates', 'turnclient', 'checklist', 'sip-offer-answer', 'testing', 'node', 'cli', 'trace']);
/** Rooms that do IO: Node modules, clocks and timers allowed (rules 2 and 3 skip them). */
const IO_ROOMS = new Set(['node', 'cli']);

/** Files at the root of src/ and their room. */
const ROOT_FILES: Readonly<Record<string, string>> = {
  'errors.ts': 'values',
  'types.ts': 'values',
  'ip.ts': 'values',
  'arguments.ts': 'values',
  'machine.ts': 'machine',
  'agent-machine.ts': 'agent',
  'without-ice.ts': 'agent',
  'core.ts': 'facade-core',
  'index.ts': 'facade-index',
};

/**
 * Violations tolerated for now, each with its reason: `file` and `violation` exactly as the checker words them.
 * Each must still occur (a fixed one fails the last test, so its entry goes with the fix). None on today's tree.
 */
const KNOWN_EXCEPTIONS: readonly { readonly file: string; readonly violation: string; readonly why: string }[] = [];

/** Everything src/ outside src/node/ may take from Node: pure computation, named. */
const NODE_ALLOWED: Readonly<Record<string, readonly string[]>> = {
  // createSecretKey and the KeyObject type: a MAC key held as node:crypto's key object (pure, like createHmac).
  'node:crypto': ['createHmac', 'createHash', 'createSecretKey', 'KeyObject', 'timingSafeEqual'],
  'node:zlib': ['crc32'],
};

/** Globals that read a clock, start a timer or draw ambient randomness. */
const FORBIDDEN_GLOBALS = new Set([
  'Date',
  'performance',
  'setTimeout',
  'setInterval',
  'setImmediate',
  'clearTimeout',
  'clearInterval',
  'clearImmediate',
  'queueMicrotask',
]);
/** Names forbidden on any object and as bare names: only Node's and Web crypto have them. */
const FORBIDDEN_ANYWHERE = new Set(['randomBytes', 'randomUUID', 'getRandomValues']);
/** `object.member` pairs forbidden (also as `object['member']` and `const { member } = object`). */
const FORBIDDEN_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  Math: ['random'],
  process: ['hrtime', 'nextTick'],
};
/** Objects through which a global is reached. */
const GLOBAL_OBJECTS = new Set(['globalThis', 'global', 'window', 'self']);

// ---- the checkers -------------------------------------------------------------------------------------------

/** Room of a path relative to src/ (posix), or undefined when the table does not place it. */
function roomOf(path: string): string | undefined {
  const slash = path.indexOf('/');
  if (slash < 0) return ROOT_FILES[path];
  const folder = path.slice(0, slash);
  return FOLDER_ROOMS.has(folder) ? folder : undefined;
}

interface ImportRef {
  readonly specifier: string;
  readonly typeOnly: boolean;
  /** Named bindings (`import { a, b as c }` gives a, b); undefined for default, namespace, bare or dynamic imports. */
  readonly names: readonly string[] | undefined;
}

// The tree is read by several checks; each (path, text) is parsed once.
const parsed = new Map<string, ts.SourceFile>();

function parse(path: string, text: string): ts.SourceFile {
  const hit = parsed.get(path);
  if (hit?.text === text) return hit;
  const sf = ts.createSourceFile(path, text, ts.ScriptTarget.ESNext, true, ts.ScriptKind.TS);
  parsed.set(path, sf);
  return sf;
}

/** Every import and re-export of a file, with whether it is type-only. */
function importsOf(sf: ts.SourceFile): ImportRef[] {
  const out: ImportRef[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const bindings = clause?.namedBindings;
      const named = bindings && ts.isNamedImports(bindings) ? bindings.elements : undefined;
      const typeOnly = !!clause && (clause.isTypeOnly || (!clause.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
      const names = clause && !clause.name && named ? named.map((e) => (e.propertyName ?? e.name).text) : undefined;
      out.push({ specifier: node.moduleSpecifier.text, typeOnly, names });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.exportClause;
      const named = clause && ts.isNamedExports(clause) ? clause.elements : undefined;
      const typeOnly = node.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly));
      out.push({ specifier: node.moduleSpecifier.text, typeOnly, names: named?.map((e) => (e.propertyName ?? e.name).text) });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const e = node.moduleReference.expression;
      if (ts.isStringLiteral(e)) out.push({ specifier: e.text, typeOnly: node.isTypeOnly, names: undefined });
    } else if (ts.isCallExpression(node) && node.arguments.length > 0 && ts.isStringLiteralLike(node.arguments[0]!)) {
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if (isImport || isRequire) out.push({ specifier: node.arguments[0].text, typeOnly: false, names: undefined });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push({ specifier: node.argument.literal.text, typeOnly: true, names: undefined });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** src/-relative path a relative specifier names (`./x.js` → `dir/x.ts`; a folder means its index.ts). */
function resolveRelative(from: string, specifier: string): string {
  let p = posix.normalize(posix.join(posix.dirname(from), specifier));
  if (p.endsWith('.js')) p = `${p.slice(0, -3)}.ts`;
  else if (!p.endsWith('.ts')) p = `${p}/index.ts`;
  return p;
}

/** Rule 1: imports that leave the file's room for a room the table does not allow. */
function layerViolations(path: string, imports: readonly ImportRef[]): string[] {
  const room = roomOf(path);
  if (room === undefined) return [`is in no room of the layer table`];
  const rule = ROOMS[room]!;
  const found: string[] = [];
  for (const imp of imports) {
    if (!imp.specifier.startsWith('.')) continue;
    const target = resolveRelative(path, imp.specifier);
    if (target.startsWith('../')) {
      found.push(`imports ${imp.specifier} from outside src/`);
      continue;
    }
    const to = roomOf(target);
    if (to === undefined) {
      found.push(`imports ${target}, which is in no room`);
      continue;
    }
    if (to === room) continue;
    const allowed =
      rule.may?.includes(to) ||
      (imp.typeOnly && rule.typeOnly?.includes(to)) ||
      (ROOMS[to]!.floor < rule.floor && !rule.never?.includes(to));
    if (!allowed) found.push(`imports ${target} (${room} may not import ${imp.typeOnly ? 'types of ' : ''}${to})`);
  }
  return found;
}

/** Rule 2: `node:` modules (and other packages) outside src/node/. */
function moduleViolations(path: string, imports: readonly ImportRef[]): string[] {
  const room = roomOf(path);
  const found: string[] = [];
  for (const imp of imports) {
    const spec = imp.specifier;
    if (spec.startsWith('.')) continue;
    if (!isBuiltin(spec)) {
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!(room && ROOMS[room]?.packages?.includes(pkg))) found.push(`imports package ${pkg}`);
      continue;
    }
    if (room !== undefined && IO_ROOMS.has(room)) continue;
    const name = spec.startsWith('node:') ? spec : `node:${spec}`;
    const allowed = NODE_ALLOWED[name];
    if (!allowed) found.push(`imports ${spec}`);
    else if (!imp.names) found.push(`imports ${spec} without naming what it takes`);
    else for (const n of imp.names) if (!allowed.includes(n)) found.push(`imports ${n} from ${spec}`);
  }
  return found;
}

/** True when `node` sits in a type (types never run); a class's `extends X` is code, though. */
function inType(node: ts.Node): boolean {
  for (let n: ts.Node | undefined = node.parent; n; n = n.parent) {
    if (ts.isExpressionWithTypeArguments(n)) return false;
    if (ts.isTypeNode(n)) return true;
  }
  return false;
}

/** The member name of `a.b` or `a['b']`, if literal. */
function memberName(node: ts.PropertyAccessExpression | ts.ElementAccessExpression): string | undefined {
  if (ts.isPropertyAccessExpression(node)) return node.name.text;
  return ts.isStringLiteralLike(node.argumentExpression) ? node.argumentExpression.text : undefined;
}

/** Rule 3: clocks, timers and ambient randomness, by identifier in code. */
function identifierViolations(sf: ts.SourceFile): string[] {
  const found = new Set<string>();
  const member = (object: string, name: string): void => {
    if (FORBIDDEN_MEMBERS[object]?.includes(name)) found.add(`uses ${object}.${name}`);
    if (GLOBAL_OBJECTS.has(object) && FORBIDDEN_GLOBALS.has(name)) found.add(`uses ${name}`);
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) && ts.isIdentifier(node.expression)) {
      const name = memberName(node);
      if (name !== undefined) member(node.expression.text, name);
    } else if (ts.isVariableDeclaration(node) && ts.isObjectBindingPattern(node.name) && node.initializer && ts.isIdentifier(node.initializer)) {
      for (const el of node.name.elements) {
        const key = el.propertyName ?? el.name;
        if (ts.isIdentifier(key)) member(node.initializer.text, key.text);
      }
    } else if (ts.isIdentifier(node) && !inType(node)) {
      const name = node.text;
      const parent = node.parent;
      // `x.setTimeout` on some other object, or a member declared with that name, is not the global (an injected
      // timer may well be called so); `globalThis.setTimeout` is caught above, `{ setTimeout }` shorthand below.
      const named = ts.isPropertyAccessExpression(parent) || ts.isPropertyAssignment(parent) || ts.isClassElement(parent) || ts.isTypeElement(parent);
      const isMemberName = named && (parent as { readonly name?: ts.Node }).name === node;
      if (FORBIDDEN_ANYWHERE.has(name)) found.add(`uses ${name}`);
      else if (FORBIDDEN_GLOBALS.has(name) && !isMemberName) {
        if (name === 'Date' && ts.isNewExpression(parent)) found.add('uses new Date');
        else if (name === 'Date' && ts.isPropertyAccessExpression(parent)) found.add(`uses Date.${parent.name.text}`);
        else found.add(`uses ${name}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return [...found];
}

/**
 * Every violation of one file, given its path relative to src/ (posix) and its text. Layers apply to every file;
 * modules and identifiers to every file outside src/node/.
 */
function checkFile(path: string, text: string): string[] {
  const sf = parse(path, text);
  const imports = importsOf(sf);
  const found = [...layerViolations(path, imports), ...moduleViolations(path, imports)];
  if (!IO_ROOMS.has(roomOf(path) ?? '')) found.push(...identifierViolations(sf));
  return found;
}

/**
 * Cycles of value imports between files (rooms cannot form one, files inside a room can). Type-only imports are
 * left out: they vanish from the emitted code, so they cannot change load order.
 */
function importCycles(files: readonly { readonly path: string; readonly text: string }[]): string[] {
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const deps = importsOf(parse(f.path, f.text)).filter((i) => i.specifier.startsWith('.') && !i.typeOnly);
    graph.set(f.path, deps.map((i) => resolveRelative(f.path, i.specifier)));
  }
  const cycles: string[] = [];
  const done = new Set<string>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    const at = stack.indexOf(n);
    if (at >= 0) {
      cycles.push([...stack.slice(at), n].join(' -> '));
      return;
    }
    if (done.has(n)) return;
    stack.push(n);
    for (const d of graph.get(n) ?? []) visit(d);
    stack.pop();
    done.add(n);
  };
  for (const n of graph.keys()) visit(n);
  return cycles;
}

// ---- the tree -----------------------------------------------------------------------------------------------

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

const srcFiles = tsFiles(srcDir).map((f) => ({ path: relative(srcDir, f).split(sep).join('/'), text: readFileSync(f, 'utf8') }));
const treeViolations = srcFiles.flatMap((f) => checkFile(f.path, f.text).map((v) => `${f.path}: ${v}`));
const isKnown = (v: string): boolean => KNOWN_EXCEPTIONS.some((k) => v === `${k.file}: ${k.violation}`);

describe('architecture: the layers of src/', () => {
  it('scans the whole tree', () => {
    expect(srcFiles.length).toBeGreaterThan(50);
    expect(srcFiles.some((f) => f.path.startsWith('node/'))).toBe(true);
  });

  it('no import runs up a floor, no Node IO module and no clock, timer or ambient randomness outside src/node/', () => {
    expect(treeViolations.filter((v) => !isKnown(v))).toEqual([]);
  });

  it('no cycle of value imports between files', () => {
    expect(importCycles(srcFiles)).toEqual([]);
  });

  it('the table only points down (so the rooms have no cycle)', () => {
    for (const [name, room] of Object.entries(ROOMS)) {
      for (const other of [...(room.may ?? []), ...(room.typeOnly ?? []), ...(room.never ?? [])]) expect(ROOMS[other], `${name} -> ${other}`).toBeDefined();
      for (const other of room.may ?? []) {
        expect(ROOMS[other]!.floor, `${name} may import ${other}`).toBeLessThanOrEqual(room.floor);
        expect(ROOMS[other]!.may ?? [], `${other} -> ${name}`).not.toContain(name);
      }
    }
    for (const room of Object.values(ROOT_FILES)) expect(ROOMS[room]).toBeDefined();
  });

  it('every known exception still occurs (remove the entry with the fix)', () => {
    for (const k of KNOWN_EXCEPTIONS) expect(treeViolations).toContain(`${k.file}: ${k.violation}`);
  });
});

describe('architecture: the checkers fail when they must', () => {
  it('places files in rooms, today and after the moves', () => {
    expect(roomOf('errors.ts')).toBe('values');
    expect(roomOf('checklist/agent-core.ts')).toBe('checklist');
    expect(roomOf('without-ice.ts')).toBe('agent');
    expect(roomOf('turnclient/allocations.ts')).toBe('turnclient');
    expect(roomOf('testing/index.ts')).toBe('testing');
    expect(roomOf('stray.ts')).toBeUndefined();
    expect(roomOf('agent/x.ts')).toBeUndefined();
    expect(checkFile('stray.ts', 'export const x = 1;')).toEqual(['is in no room of the layer table']);
  });

  it('a clean sans-IO file passes', () => {
    const ok = [
      `import { createHash, createHmac, timingSafeEqual } from 'node:crypto';`,
      `import { crc32 } from 'node:zlib';`,
      `import { canonicalIp } from '../ip.js';`,
      `import type { SansIoMachine } from '../machine.js';`,
      `export { decode } from './message.js';`,
      `// setTimeout, Date.now() and Math.random() in a comment are not code`,
      `const msg = 'never call setTimeout or new Date() here', t = \`no \${'performance.now()'} either\`;`,
      `interface Clock { now(): number; created: Date; timer: ReturnType<typeof setTimeout> }`,
      `const o = { setTimeout: 1 }; o.setTimeout; this.random.bytes(4); stats.performance;`,
      `interface Timers { setTimeout(f: () => void, ms: number): unknown } class T { performance = 0; clearTimeout(): void {} }`,
    ].join('\n');
    expect(checkFile('stun/pacing.ts', ok)).toEqual([]);
    expect(checkFile('node/clock.ts', `import { setTimeout } from 'node:timers'; const t = Date.now(); Math.random();`)).toEqual([]);
    expect(checkFile('node/x.ts', `import { AgentMachine } from '../agent-machine.js'; import { Gatherer } from '../candidates/gatherer.js';`)).toEqual([]);
  });

  it('rule 1: an import up a floor, across a floor, or to a forbidden lower room fails, types included', () => {
    expect(checkFile('stun/demux.ts', `import { now } from '../node/clock.js';`)).toEqual(['imports node/clock.ts (stun may not import node)']);
    expect(checkFile('stun/demux.ts', `import type { Pair } from '../checklist/pair.js';`)).toEqual(['imports checklist/pair.ts (stun may not import types of checklist)']);
    expect(checkFile('stun/demux.ts', `export * from '../candidates/index.js';`)).toEqual(['imports candidates/index.ts (stun may not import candidates)']);
    expect(checkFile('stun/demux.ts', `const m = await import('../agent-machine.js');`)).toEqual(['imports agent-machine.ts (stun may not import agent)']);
    expect(checkFile('types.ts', `import type { SansIoMachine } from './machine.js';`)).toEqual(['imports machine.ts (values may not import types of machine)']);
    expect(checkFile('checklist/x.ts', `import { TurnClient } from '../turnclient/turn-client.js';`)).toEqual(['imports turnclient/turn-client.ts (checklist may not import turnclient)']);
    expect(checkFile('checklist/agent-core.ts', `import type { TurnClient } from '../turnclient/turn-client.js';`)).toEqual(['imports turnclient/turn-client.ts (checklist may not import types of turnclient)']);
    expect(checkFile('testing/x.ts', `import { IceAgent } from '../node/ice-agent.js';`)).toEqual(['imports node/ice-agent.ts (testing may not import node)']);
    expect(checkFile('node/x.ts', `import { VirtualNetwork } from '../testing/index.js';`)).toEqual(['imports testing/index.ts (node may not import testing)']);
    expect(checkFile('core.ts', `export { IceAgent } from './node/ice-agent.js';`)).toEqual(['imports node/ice-agent.ts (facade-core may not import node)']);
    expect(checkFile('agent-machine.ts', `import './stray.js';`)).toEqual(['imports stray.ts, which is in no room']);
    expect(checkFile('stun/x.ts', `import '../../test/helper.js';`)).toEqual(['imports ../../test/helper.js from outside src/']);
  });

  it('rule 1: same-floor rooms need a listed exception; type-only exceptions stay type-only', () => {
    expect(checkFile('candidates/x.ts', `import type { TurnClientOptions } from '../turnclient/turn-client.js';`)).toEqual([]);
    expect(checkFile('candidates/x.ts', `import { type A, type B } from '../turnclient/turn-client.js';`)).toEqual([]);
    expect(checkFile('candidates/x.ts', `import { TurnClient } from '../turnclient/turn-client.js';`)).toEqual(['imports turnclient/turn-client.ts (candidates may not import turnclient)']);
    expect(checkFile('turnclient/x.ts', `import { type A, Gatherer } from '../candidates/gatherer.js';`)).toEqual(['imports candidates/gatherer.ts (turnclient may not import candidates)']);
    expect(checkFile('sip-offer-answer/x.ts', `export type { AgentState } from '../checklist/types.js';`)).toEqual([]);
    expect(checkFile('sip-offer-answer/x.ts', `import { AgentCore } from '../checklist/agent-core.js';`)).toEqual(['imports checklist/agent-core.ts (sip-offer-answer may not import checklist)']);
    expect(checkFile('checklist/x.ts', `import type { OfferAnswer } from '../sip-offer-answer/offer-answer.js';`)).toEqual(['imports sip-offer-answer/offer-answer.ts (checklist may not import types of sip-offer-answer)']);
    expect(checkFile('agent-machine.ts', `import { NoIcePaths } from './without-ice.js';`)).toEqual([]);
    expect(checkFile('testing/x.ts', `import { AgentMachine } from '../agent-machine.js';`)).toEqual([]);
    expect(checkFile('agent-machine.ts', `import { VirtualNetwork } from './testing/index.js';`)).toEqual(['imports testing/index.ts (agent may not import testing)']);
  });

  it('a cycle of value imports fails; one closed by a type-only import passes', () => {
    const file = (path: string, text: string) => ({ path, text });
    const a = file('stun/a.ts', `import { b } from './b.js'; export const a = 1;`);
    const b = file('stun/b.ts', `import { c } from './c.js'; export const b = 2;`);
    expect(importCycles([a, b, file('stun/c.ts', `export { a } from './a.js';`)])).toEqual(['stun/a.ts -> stun/b.ts -> stun/c.ts -> stun/a.ts']);
    expect(importCycles([a, b, file('stun/c.ts', `import type { A } from './a.js';`)])).toEqual([]);
  });

  it('rule 2: Node IO modules, unnamed or unlisted names from node:crypto, and unlisted packages fail', () => {
    for (const m of ['node:dgram', 'node:net', 'node:tls', 'node:os', 'node:dns', 'node:timers', 'node:perf_hooks', 'node:process', 'node:events', 'dgram']) {
      expect(checkFile('stun/x.ts', `import { a } from '${m}';`)).toEqual([`imports ${m}`]);
    }
    expect(checkFile('testing/x.ts', `const d = require('node:dns');`)).toEqual(['imports node:dns']);
    expect(checkFile('stun/x.ts', `export { lookup } from 'node:dns';`)).toEqual(['imports node:dns']);
    expect(checkFile('stun/x.ts', `import { randomBytes, createHash } from 'node:crypto';`)).toEqual(['imports randomBytes from node:crypto', 'uses randomBytes']);
    expect(checkFile('stun/x.ts', `import { webcrypto as w } from 'crypto';`)).toEqual(['imports webcrypto from crypto']);
    expect(checkFile('stun/x.ts', `import * as crypto from 'node:crypto';`)).toEqual(['imports node:crypto without naming what it takes']);
    expect(checkFile('stun/x.ts', `import zlib from 'node:zlib';`)).toEqual(['imports node:zlib without naming what it takes']);
    expect(checkFile('stun/x.ts', `import { EventEmitter } from 'eventemitter3';`)).toEqual(['imports package eventemitter3']);
    expect(checkFile('candidates/mdns.ts', `import dnsPacket from 'dns-packet';`)).toEqual([]);
  });

  it('rule 3: each clock, timer and ambient randomness fails, however it is reached', () => {
    const cases: readonly [string, string][] = [
      ['const x = Math.random();', 'uses Math.random'],
      [`const x = Math['random']();`, 'uses Math.random'],
      ['const { random } = Math;', 'uses Math.random'],
      ['const b = crypto.randomBytes(8);', 'uses randomBytes'],
      ['const b = randomBytes(8);', 'uses randomBytes'],
      ['const id = crypto.randomUUID();', 'uses randomUUID'],
      ['globalThis.crypto.getRandomValues(buf);', 'uses getRandomValues'],
      ['const t = Date.now();', 'uses Date.now'],
      ['const d = new Date();', 'uses new Date'],
      ['const D = Date;', 'uses Date'],
      ['const t = performance.now();', 'uses performance'],
      ['const t = process.hrtime.bigint();', 'uses process.hrtime'],
      ['process.nextTick(f);', 'uses process.nextTick'],
      ['queueMicrotask(f);', 'uses queueMicrotask'],
      ['setTimeout(f, 1);', 'uses setTimeout'],
      ['globalThis.setTimeout(f, 1);', 'uses setTimeout'],
      ['setInterval(f, 1);', 'uses setInterval'],
      ['setImmediate(f);', 'uses setImmediate'],
      ['clearTimeout(t);', 'uses clearTimeout'],
      ['clearInterval(t);', 'uses clearInterval'],
      ['clearImmediate(t);', 'uses clearImmediate'],
      ['const x = `${setTimeout(f)}`;', 'uses setTimeout'],
      ['class Clock extends Date {}', 'uses Date'],
      ['const timers = { setTimeout };', 'uses setTimeout'],
    ];
    for (const [code, expected] of cases) expect(checkFile('testing/x.ts', code), code).toEqual([expected]);
  });

  it('rule 3 applies to src/testing/ and the facades, not to src/node/', () => {
    expect(checkFile('testing/random.ts', 'export const seed = Date.now();')).toEqual(['uses Date.now']);
    expect(checkFile('core.ts', 'export const seed = Math.random();')).toEqual(['uses Math.random']);
    expect(checkFile('node/random.ts', 'export const seed = Math.random();')).toEqual([]);
  });

  it('src/cli/ is an IO room on the top floor: timers and node: modules allowed, and nothing below imports it', () => {
    expect(checkFile('cli/x.ts', `import { parseArgs } from 'node:util';\nimport '../testing/index.js';\nimport '../node/stun-server.js';\nexport const t = setTimeout(() => parseArgs(), performance.now());`)).toEqual([]);
    expect(checkFile('index.ts', `import './cli/main.js';`)).toEqual(['imports cli/main.ts (facade-index may not import cli)']);
  });

  it('the regression that went unnoticed: demux importing the Node clock and reading three clocks', () => {
    const demux = [
      `import { monotonicNow } from '../node/clock.js';`,
      `export const jitter = Math.random();`,
      `export const stamp = new Date();`,
      `export const t0 = process.hrtime();`,
    ].join('\n');
    expect(checkFile('stun/demux.ts', demux)).toEqual(['imports node/clock.ts (stun may not import node)', 'uses Math.random', 'uses new Date', 'uses process.hrtime']);
  });
});
