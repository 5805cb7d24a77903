import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Real-socket and coturn tests bind ports; keep files parallel but bounded for a 2-core machine.
    maxWorkers: 2,
  },
});
