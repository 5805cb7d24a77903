/**
 * Test helper: lets a child Node process (started with `ip netns exec` inside a test's namespace) import this
 * repository's TypeScript sources, so interop children test the sources, not a possibly stale `dist/`.
 *
 * The loader hooks resolve `./x.js` imports of `.ts` files to `./x.ts` and strip types with oxc
 * (`rolldown/experimental`, there through vitest's vite), else with typescript's `transpileModule` (ten times slower
 * to start: seconds on a loaded 2-core machine).
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const TS_HOOKS = `
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const ROLLDOWN = %ROLLDOWN%;
const TYPESCRIPT = %TYPESCRIPT%;
let strip;
async function stripper() {
  if (strip) return strip;
  if (ROLLDOWN) {
    try {
      const { transformSync } = await import(ROLLDOWN);
      strip = (path, text) => {
        const r = transformSync(path, text, { lang: 'ts' });
        if (r.errors.length > 0) throw new Error(path + ': ' + r.errors.map((e) => e.message).join('; '));
        return r.code;
      };
      return strip;
    } catch {}
  }
  const ts = (await import(TYPESCRIPT)).default;
  strip = (path, text) => ts.transpileModule(text, {
    fileName: path,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  }).outputText;
  return strip;
}
export async function resolve(specifier, context, next) {
  // NodeNext sources import './x.js' for './x.ts'.
  if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    const url = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
    if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true };
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const path = fileURLToPath(url);
  const source = (await stripper())(path, await readFile(path, 'utf8'));
  return { format: 'module', source, shortCircuit: true };
}
`;

function moduleUrl(specifier: string): string | null {
  try {
    return pathToFileURL(createRequire(import.meta.url).resolve(specifier)).href;
  } catch {
    return null;
  }
}

/**
 * Writes the loader hooks into `dir` (a temporary directory the caller removes) and returns the Node arguments
 * (`--import <url>`) that register them in a child process.
 */
export function tsChildNodeArgs(dir: string): string[] {
  const hooks = TS_HOOKS.replace('%ROLLDOWN%', JSON.stringify(moduleUrl('rolldown/experimental'))).replace(
    '%TYPESCRIPT%',
    JSON.stringify(moduleUrl('typescript')),
  );
  writeFileSync(join(dir, 'hooks.mjs'), hooks);
  writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
  return ['--import', pathToFileURL(join(dir, 'register.mjs')).href];
}
