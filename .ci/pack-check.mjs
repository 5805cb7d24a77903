// What a new user gets: packs a copy of the checkout (tracked and new files only, as a clean clone has them, so
// `prepack` must build), installs the tarball into a scratch project, loads the three entry points from ESM and
// CommonJS, runs the `icewire` command, and type-checks a consumer under node16 and bundler resolution. Exits non-zero on the first failure. Run by .ci/run.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const tmp = mkdtempSync(join(tmpdir(), 'icewire-pack-'));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const fail = (msg) => {
  throw new Error(`pack-check: ${msg}`);
};

try {
  // 1. A clean tree: no dist/, node_modules shared by symlink (prepack needs tsc and rolldown, not a fresh install).
  const tree = join(tmp, 'tree');
  const files = run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], repo).split('\0').filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(tree, f)), { recursive: true });
    cpSync(join(repo, f), join(tree, f));
  }
  symlinkSync(join(repo, 'node_modules'), join(tree, 'node_modules'), 'dir');
  // prepack's build output comes first on stdout (the bundler prints a table of chunks, some lines starting with
  // "["); npm's JSON report is the last thing printed and opens with a line that is exactly "[".
  const out = run('npm', ['pack', '--json', '--pack-destination', tmp], tree);
  const [packed] = JSON.parse(out.slice(out.search(/^\[$/m)));
  const shipped = new Set(packed.files.map((f) => f.path));
  for (const need of ['package.json', 'README.md', 'LICENSE', 'dist/pkg/index.js', 'dist/pkg/core.js', 'dist/pkg/testing.js', 'dist/pkg/cli.js', 'dist/pkg/sdp-transform.js', 'dist/src/index.d.ts', 'dist/src/sip-offer-answer/sdp-transform.d.ts', 'dist/src/core.d.ts', 'dist/src/testing/index.d.ts']) {
    if (!shipped.has(need)) fail(`the tarball lacks ${need}`);
  }
  // Only what a user runs or type-checks: no source maps (they would point at unshipped sources), no tsc .js.
  const stray = [...shipped].filter((f) => f.endsWith('.map') || (f.startsWith('dist/src/') && !f.endsWith('.d.ts')));
  if (stray.length > 0) fail(`the tarball ships ${stray.length} unwanted files, e.g. ${stray[0]}`);
  console.log(`pack-check: ${packed.filename}, ${packed.files.length} files, ${(packed.size / 1024).toFixed(0)} kB`);

  // 2. A scratch project installs the tarball (dependencies come from the registry, as for a user).
  const app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--silent', join(tmp, packed.filename)], app);

  // 3. ESM: every entry loads, and the entries share classes (one bundle graph).
  writeFileSync(
    join(app, 'esm.mjs'),
    `import * as main from 'icewire';
import * as core from 'icewire/core';
import * as testing from 'icewire/testing';
import * as sdpt from 'icewire/sdp-transform';
if (typeof sdpt.iceFromSdpTransform !== 'function' || sdpt.iceFromSdpTransform(sdpt.parseSdpTransform('v=0\\r\\no=- 1 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\na=ice-options:trickle ice2\\r\\n')).options.join() !== 'trickle,ice2') throw new Error('icewire/sdp-transform');
if (typeof main.IceAgent !== 'function' || typeof core.AgentMachine !== 'function' || typeof testing.VirtualNetwork !== 'function') throw new Error('missing exports');
if (main.InvalidStateError !== core.InvalidStateError) throw new Error('entries do not share classes');
console.log('esm ok');
`,
  );
  if (run('node', ['esm.mjs'], app).trim() !== 'esm ok') fail('ESM import');

  // 3b. The `icewire` command: npm links the bin, and it runs (help, version, a host-only gather on loopback).
  const bin = join(app, 'node_modules', '.bin', 'icewire');
  if (!run(bin, ['--help'], app).includes('stun-server')) fail('icewire --help');
  if (run(bin, ['--version'], app).trim() !== packed.version) fail('icewire --version');
  const gathered = JSON.parse(run(bin, ['gather', '--address', '127.0.0.1', '--json'], app));
  if (!gathered.ok || gathered.candidates.length === 0) fail('icewire gather');
  console.log('pack-check: the icewire command runs');

  // 4. CommonJS: require(esm) (Node >= 20.19 / 22.12) hands out the same module instances as import.
  writeFileSync(
    join(app, 'cjs.cjs'),
    `const main = require('icewire');
const core = require('icewire/core');
const testing = require('icewire/testing');
if (typeof main.IceAgent !== 'function' || typeof core.AgentMachine !== 'function' || typeof testing.VirtualNetwork !== 'function') throw new Error('missing exports');
if (main.InvalidStateError !== core.InvalidStateError) throw new Error('entries do not share classes');
console.log('cjs ok');
`,
  );
  if (run('node', ['cjs.cjs'], app).trim() !== 'cjs ok') fail('CommonJS require');

  // 5. Types: a consumer type-checks against the shipped declarations, library files included (skipLibCheck off).
  writeFileSync(
    join(app, 'consumer.ts'),
    `import { IceAgent, type IceAgentOptions, type TrickledCandidate } from 'icewire';
import { AgentMachine } from 'icewire/core';
import { VirtualNetwork } from 'icewire/testing';
import { iceFromSdpTransform, type SessionDescription } from 'icewire/sdp-transform';
export const readIce: (s: SessionDescription) => unknown = iceFromSdpTransform;
const options: IceAgentOptions = { includeLoopback: true, addressFilter: (a) => a === '127.0.0.1' };
export const agent: IceAgent = new IceAgent(options);
export const net = new VirtualNetwork({ seed: 1 });
export const machine: typeof AgentMachine = AgentMachine;
export const end: TrickledCandidate = { kind: 'end-of-candidates', sdpMid: '0' };
`,
  );
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const [resolution, module] of [['node16', 'node16'], ['bundler', 'esnext']]) {
    const config = {
      compilerOptions: { module, moduleResolution: resolution, target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(repo, 'node_modules', '@types')] },
      files: ['consumer.ts'],
    };
    writeFileSync(join(app, `tsconfig.${resolution}.json`), JSON.stringify(config));
    try {
      run('node', [tsc, '-p', `tsconfig.${resolution}.json`], app);
    } catch (e) {
      fail(`consumer does not type-check under moduleResolution ${resolution}:\n${e.stdout ?? e}`);
    }
  }
  console.log('pack-check: ESM import, CommonJS require and types (node16, bundler) ok');
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
