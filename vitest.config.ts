import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export default defineConfig({
  resolve: {
    // README samples import the package by name; tests run them against the sources.
    alias: [
      { find: /^icewire\/core$/, replacement: src('core.ts') },
      { find: /^icewire\/testing$/, replacement: src('testing/index.ts') },
      { find: /^icewire\/sdp-transform$/, replacement: src('sip-offer-answer/sdp-transform.ts') },
      { find: /^icewire$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Real-socket and coturn tests bind ports; keep files parallel but bounded for a 2-core machine.
    maxWorkers: 2,
    // Under CI a JSON report is written too, so .ci/run can print the plain "N passed, N failed" closing line.
    ...(process.env.CI ? { reporters: ['default', 'json'], outputFile: { json: 'test-results.json' } } : {}),
  },
});
