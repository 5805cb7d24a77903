/**
 * The published entry points are bundles (rolldown over tsc's output, see rolldown.config.mjs). The rest of the suite
 * runs the TypeScript sources; this file runs what `import('icewire')` gives a user: the same exports, class names
 * kept (errors name themselves after their class), one class per name across the three entries, and a real
 * loopback connection. The bundles exist after `npm run build`, which CI runs before the tests.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const pkg = new URL('../dist/pkg/', import.meta.url);
const built = existsSync(new URL('index.js', pkg));
if (!built && process.env['CI']) throw new Error('dist/pkg is missing: CI must run `npm run build` before the tests');

describe.skipIf(!built)('the published bundles (dist/pkg)', () => {
  const load = (entry: string) => import(new URL(entry, pkg).href) as Promise<Record<string, unknown>>;

  it('export what the sources export, entry by entry', async () => {
    for (const [entry, src] of [
      ['index.js', '../src/index.js'],
      ['core.js', '../src/core.js'],
      ['testing.js', '../src/testing/index.js'],
      ['sdp-transform.js', '../src/sip-offer-answer/sdp-transform.js'],
    ] as const) {
      const bundled = Object.keys(await load(entry)).sort();
      const source = Object.keys((await import(src)) as Record<string, unknown>).sort();
      expect(bundled, entry).toEqual(source);
    }
  });

  it('load through require() too (CommonJS users on Node >= 20.19: no top-level await allowed)', async () => {
    const required = createRequire(import.meta.url)(new URL('index.js', pkg).pathname) as Record<string, unknown>;
    // vitest's import() has its own module graph, so compare exports, not identities (pack-check does those).
    expect(Object.keys(required).sort()).toEqual(Object.keys(await load('index.js')).sort());
  });

  it('keep class names, and share classes between entries', async () => {
    const index = await load('index.js');
    const core = await load('core.js');
    const InvalidStateError = index['InvalidStateError'] as new (m: string) => Error;
    expect(new InvalidStateError('x').name).toBe('InvalidStateError');
    expect(core['InvalidStateError']).toBe(index['InvalidStateError']);
    expect(core['GlobalPacer']).toBe(index['GlobalPacer']);
  });

  it('package.json names the bundled command as its bin, with its #! line', () => {
    const pkgJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { bin: Record<string, string> };
    expect(pkgJson.bin).toEqual({ icewire: './dist/pkg/cli.js' });
    expect(readFileSync(new URL('cli.js', pkg), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('connect two agents on loopback', async () => {
    const { IceAgent } = (await load('index.js')) as unknown as typeof import('../src/index.js');
    const onLoopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' };
    const a = new IceAgent({ ...onLoopback, role: 'controlling' });
    const b = new IceAgent({ ...onLoopback, role: 'controlled' });
    try {
      await Promise.all([a.gather(), b.gather()]);
      a.setRemoteParameters(b.getLocalParameters());
      b.setRemoteParameters(a.getLocalParameters());
      for (const c of b.getLocalCandidates()) a.addRemoteCandidate(c);
      for (const c of a.getLocalCandidates()) b.addRemoteCandidate(c);
      const got = new Promise<string>((resolve) => b.once('data', (d) => resolve(d.toString())));
      await new Promise<void>((resolve) => a.on('statechange', (s) => s === 'connected' && resolve()));
      expect(a.getSelectedCandidatePair()?.local.address).toBe('127.0.0.1');
      a.send(Buffer.from('bundled'));
      expect(await got).toBe('bundled');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 10_000);
});
