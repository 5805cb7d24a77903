/**
 * The `icewire` command as a user runs it: the built bundle (dist/pkg/cli.js, after `npm run build`) as a child
 * process, against loopback servers the tests start (our STUN server on 127.0.0.1 + 127.0.0.2, coturn for TURN).
 * Every child is bounded in time and killed by PID in `finally`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStunServer } from '../../src/node/stun-server.js';
import { startCoturn, type Coturn } from '../helpers/coturn.js';

const cli = new URL('../../dist/pkg/cli.js', import.meta.url).pathname;
const built = existsSync(cli);
if (!built && process.env['CI']) throw new Error('dist/pkg/cli.js is missing: CI must run `npm run build` before the tests');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const children = new Set<ChildProcess>();
function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill('SIGKILL');
}

/** Runs the CLI to completion (killed after `limitMs`). */
function run(args: readonly string[], limitMs = 15_000, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => kill(child), limitMs);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
}

afterAll(() => {
  for (const c of children) kill(c);
});

describe.skipIf(!built)('icewire (the built command)', () => {
  it('--help lists the commands and the exit codes; no command is a usage error (2)', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    for (const c of ['gather', 'nat', 'stun-server', 'timeline', 'demo']) expect(help.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(help.stdout).toMatch(/exit codes: 0 ok, 1 .*, 2 usage error, 3/);
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/usage: icewire/);
  });

  it('--version prints the package version', async () => {
    const v = await run(['--version']);
    expect(v.stdout.trim()).toBe((JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version);
  });

  it('usage errors exit 2 with the command usage: unknown command, unknown option, missing --stun, bad values', async () => {
    for (const args of [['frobnicate'], ['gather', '--frob'], ['nat'], ['nat', '--stun', 'http://x'], ['gather', '--turn', 'turn:127.0.0.1'], ['stun-server', '--port', '70000'], ['gather', '--address', 'nope'], ['demo', '--x']]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.length).toBeGreaterThan(0);
    }
  });

  it('gather without servers: host candidates only, as JSON', async () => {
    const r = await run(['gather', '--address', '127.0.0.1', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { ok: boolean; candidates: { type: string; address: string; server: string; priority: number; ms: number }[]; servers: unknown[] };
    expect(out.ok).toBe(true);
    expect(out.candidates.length).toBeGreaterThan(0);
    for (const c of out.candidates) expect(c).toMatchObject({ type: 'host', address: '127.0.0.1', server: 'host' });
    expect(out.servers).toHaveLength(1);
  });

  it('gather: text without colour when not a TTY, and errors per server with exit code 1', async () => {
    const stun = await startStunServer({ address: '127.0.0.1', port: 0 });
    try {
      const dead = 'stun:127.0.0.1:9';
      const r = await run(['gather', '--address', '127.0.0.1', '--stun', `stun:127.0.0.1:${stun.port}`, '--stun', dead, '--timeout', '600']);
      expect(r.code).toBe(1);
      expect(r.stdout).not.toMatch(/\x1b\[/);
      expect(r.stdout).toMatch(/^host +127\.0\.0\.1:\d+ +prio 2130706431 +[\d.]+ ms +host$/m);
      expect(r.stdout).toMatch(new RegExp(`^error +${dead}: `, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^note +stun:127.0.0.1:${stun.port}: answered with a host address`, 'm'));
      expect(stun.stats.successResponses).toBeGreaterThan(0);
    } finally {
      await stun.close();
    }
  });

  it('stun-server with --alt-address serves RFC 5780; nat classifies loopback through it; SIGTERM closes cleanly', async () => {
    const server = spawn(process.execPath, [cli, 'stun-server', '--port', '0', '--alt-address', '127.0.0.2', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(server);
    const guard = setTimeout(() => kill(server), 20_000);
    try {
      const lines = createInterface({ input: server.stdout! })[Symbol.asyncIterator]();
      const first = JSON.parse((await lines.next()).value as string) as { listening: { address: string; port: number; alternate: { address: string; port: number } } };
      expect(first.listening).toMatchObject({ address: '127.0.0.1', alternate: { address: '127.0.0.2' } });
      const r = await run(['nat', '--stun', `stun:127.0.0.1:${first.listening.port}`, '--local', '127.0.0.1', '--rto', '50', '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        ok: true,
        udp: true,
        natted: false,
        mapping: 'endpoint-independent',
        filtering: 'endpoint-independent',
        hairpinning: true,
        otherAddress: first.listening.alternate,
      });
      const text = await run(['nat', '--stun', `stun:127.0.0.1:${first.listening.port}`, '--local', '127.0.0.1', '--rto', '50'], 15_000, { NO_COLOR: '1' });
      expect(text.stdout).toMatch(/^mapping +endpoint-independent$/m);
      expect(text.stdout).toMatch(/^filtering +endpoint-independent$/m);
      expect(text.stdout).toMatch(/^hairpinning +yes$/m);
      const exit = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
      server.kill('SIGTERM');
      const stats = JSON.parse((await lines.next()).value as string) as { stats: { signal: string; changedOriginResponses: number } };
      expect(stats.stats.signal).toBe('SIGTERM');
      expect(stats.stats.changedOriginResponses).toBeGreaterThanOrEqual(2);
      expect(await exit).toBe(0);
    } finally {
      clearTimeout(guard);
      kill(server);
      children.delete(server);
    }
  });

  it('nat against a server without RFC 5780 exits 1 and says why', async () => {
    const plain = await startStunServer({ address: '127.0.0.1', port: 0 });
    try {
      const r = await run(['nat', '--stun', `stun:127.0.0.1:${plain.port}`, '--local', '127.0.0.1', '--no-hairpin', '--rto', '50']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^mapping +unknown$/m);
      expect(r.stdout).toMatch(/OTHER-ADDRESS/);
    } finally {
      await plain.close();
    }
  });

  it('stun-server on an address this machine does not have exits 3', async () => {
    const r = await run(['stun-server', '--address', '192.0.2.1', '--port', '0']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/EADDRNOTAVAIL/);
  });

  it('demo runs the loopback negotiation', async () => {
    const r = await run(['demo'], 20_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/selected pair: candidate:/);
    expect(r.stdout.match(/bytes back in/g)).toHaveLength(5);
  }, 25_000);
});

describe.skipIf(!built)('icewire gather through coturn', () => {
  let coturn: Coturn;
  beforeAll(async () => {
    coturn = await startCoturn({ tls: false });
  }, 20_000);
  afterAll(() => coturn?.stop());

  it('a relayed candidate, attributed to its TURN URL, with its time', async () => {
    const url = `turn:127.0.0.1:${coturn.port}`;
    const r = await run(['gather', '--address', '127.0.0.1', '--turn', url, '--user', coturn.user, '--credential', coturn.password, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { candidates: { type: string; server: string; ms: number; relatedAddress?: string }[] };
    const relay = out.candidates.find((c) => c.type === 'relay');
    expect(relay).toMatchObject({ server: url, relatedAddress: '127.0.0.1' });
    expect(relay!.ms).toBeGreaterThan(0);
    const bad = await run(['gather', '--address', '127.0.0.1', '--turn', url, '--user', coturn.user, '--credential', 'wrong', '--json']);
    expect(bad.code).toBe(1);
    expect((JSON.parse(bad.stdout) as { servers: { server: string; errors: string[] }[] }).servers.find((s) => s.server === url)!.errors.join()).toMatch(/TURN server .* failed/);
  }, 30_000);
});

describe.skipIf(!built)('the README section "The icewire command"', () => {
  it('names only real commands and options (the samples contact outside servers, so they are checked, not run)', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## The `icewire` command'));
    const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
    const lines = block.split('\n').filter((l) => l.startsWith('icewire '));
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (const line of lines) {
      const [, command, ...rest] = line.replace(/#.*/, '').trim().split(/\s+/);
      const help = await run([command!, '--help']);
      expect(help.code, line).toBe(0);
      for (const option of rest.filter((w) => w.startsWith('--'))) expect(help.stdout, `${line}: ${option}`).toContain(option);
    }
  });
});
