/**
 * Every ```ts block of README.md and of the TSDoc in src/ type-checks against the built declarations (dist/src),
 * resolved the way a user's `import 'icewire'` resolves them, with the compiler options a strict user would have.
 * test/readme.test.ts runs the README samples with types stripped; this is the half that sees type errors.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const dts = join(root, 'dist/src');
const built = existsSync(join(dts, 'index.d.ts'));
if (!built && process.env['CI']) throw new Error('dist/src is missing: CI must run `npm run build` before the tests');

// Blocks outside @example that lean on names their surrounding prose defines get those names declared here.
const PREAMBLE: Record<string, string> = {
  'src/node/ice-agent.ts':
    "import { IceAgent, type IceParameters, type Candidate } from 'icewire';\ndeclare const remoteParams: IceParameters;\ndeclare const remoteCandidates: Candidate[];\n",
};

function samples(): { name: string; code: string }[] {
  const out: { name: string; code: string }[] = [];
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].forEach((m, i) => out.push({ name: `README sample ${i + 1}`, code: m[1]! }));
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  for (const file of walk(join(root, 'src'))) {
    const rel = relative(root, file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*\* ```ts\n([\s\S]*?)^\s*\* ```/gm)) {
      const code = m[1]!.replace(/^\s*\* ?/gm, '');
      out.push({ name: `${rel}:${text.slice(0, m.index).split('\n').length}`, code: (PREAMBLE[rel] ?? '') + code });
    }
  }
  return out;
}

describe.skipIf(!built)('code samples type-check against the published declarations', () => {
  const all = samples();
  const files = all.map((_, i) => join(root, 'test', `.samples-${i}.ts`));
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
    paths: { icewire: [join(dts, 'index.d.ts')], 'icewire/core': [join(dts, 'core.d.ts')], 'icewire/testing': [join(dts, 'testing/index.d.ts')], 'icewire/sdp-transform': [join(dts, 'sip-offer-answer/sdp-transform.d.ts')] },
  };
  // One program for all samples (one type-check of the declarations); the files exist only in this host.
  const host = ts.createCompilerHost(options);
  const byPath = new Map(files.map((f, i) => [f, `${all[i]!.code}\nexport {};\n`]));
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => (byPath.has(f) ? ts.createSourceFile(f, byPath.get(f)!, lang) : getSourceFile(f, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (f) => byPath.has(f) || fileExists(f);
  const program = ts.createProgram(files, options, host);

  it('finds the README samples and the TSDoc examples', () => {
    expect(all.filter((s) => s.name.startsWith('README')).length).toBeGreaterThanOrEqual(3);
    expect(all.some((s) => s.name.startsWith('src/testing/index.ts'))).toBe(true);
  });
  all.forEach((s, i) => {
    it(s.name, () => {
      const diagnostics = ts.getPreEmitDiagnostics(program, program.getSourceFile(files[i]!));
      expect(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
    });
  });
});
