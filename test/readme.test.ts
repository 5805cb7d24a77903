import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

// Every ```ts block of README.md is executed, so the samples cannot rot. `icewire` resolves to src/ (vitest alias).
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
const dir = mkdtempSync(join(new URL('.', import.meta.url).pathname, '.readme-'));

describe('README code samples', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('has samples', () => expect(blocks.length).toBeGreaterThanOrEqual(3));
  blocks.forEach((code, i) => {
    it(`sample ${i + 1} runs`, async () => {
      const file = join(dir, `sample-${i + 1}.ts`);
      writeFileSync(file, `${code}\nexport {};\n`);
      const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
      try {
        await import(file);
        // A line `console.log(...); // "text"` documents its output: the sample must really print it.
        const printed = log.mock.calls.map((args) => args.map(String).join(' '));
        const documented = [...code.matchAll(/console\.log\(.*\);?\s*\/\/ "([^"]*)"/g)].map((m) => m[1]!);
        // Every print is documented, and prints exactly what it says (types: test/samples-types.test.ts).
        expect(documented.length).toBe(code.match(/console\.log\(/g)?.length ?? 0);
        expect(printed).toEqual(documented);
      } finally {
        log.mockRestore();
      }
    }, 20_000);
  });
});
