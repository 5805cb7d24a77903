// The published entry points (`icewire/sdp-transform` is its own, so only its users load sdp-transform), bundled from tsc's output (dist/src) into dist/pkg: Node's ESM loader pays per file,
// and `import('icewire')` took ~45 ms over ~80 modules against ~20 ms for a handful of chunks. The three entries
// share chunks, so `icewire`, `icewire/core` and `icewire/testing` hand out the same classes; modules loaded on
// first use (mDNS, TURN over TCP/TLS) stay chunks of their own. Types stay tsc's (dist/src/*.d.ts). No source maps:
// the bundles are unminified with names kept, so stack traces read as they are, and maps would point at sources the
// package does not ship. `cli` is the `icewire` command (package.json `bin`); its `#!` line survives bundling.
export default {
  input: {
    index: 'dist/src/index.js',
    core: 'dist/src/core.js',
    testing: 'dist/src/testing/index.js',
    cli: 'dist/src/cli/main.js',
    'sdp-transform': 'dist/src/sip-offer-answer/sdp-transform.js',
  },
  external: [/^node:/, 'eventemitter3', 'dns-packet', 'sdp-transform'],
  platform: 'node',
  logLevel: 'warn',
  output: { dir: 'dist/pkg', cleanDir: true, keepNames: true, format: 'esm', entryFileNames: '[name].js', chunkFileNames: 'chunk-[hash].js', sourcemap: false },
};
