/**
 * `icewire timeline` as a user runs it: the built bundle (dist/pkg/cli.js, after `npm run build`) as a child
 * process, over a trace written to a temporary folder (removed afterwards). No network.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { traceLine } from '../../src/node/trace-file.js';
import { renderTimelineHtml, renderTimelineSvg } from '../../src/trace/timeline.js';
import { tracedRun } from '../trace/traced-run.js';

const cli = new URL('../../dist/pkg/cli.js', import.meta.url).pathname;
const built = existsSync(cli);
if (!built && process.env['CI']) throw new Error('dist/pkg/cli.js is missing: CI must run `npm run build` before the tests');

const dir = mkdtempSync(join(tmpdir(), 'icewire-timeline-'));
const children = new Set<ChildProcess>();

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function run(args: readonly string[], limitMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
}

describe.skipIf(!built)('icewire timeline (the built command)', () => {
  const { events } = tracedRun();
  const trace = join(dir, 'trace.jsonl');
  writeFileSync(trace, events.map(traceLine).join(''));

  it('-o timeline.html writes the HTML page, -o timeline.svg the SVG, as the renderer draws them', async () => {
    const html = join(dir, 'timeline.html');
    const r = await run(['timeline', trace, '-o', html, '--title', 'T']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${events.length} events, HTML written to ${html}`);
    expect(readFileSync(html, 'utf8')).toBe(renderTimelineHtml(events, { title: 'T' }));
    const svg = join(dir, 'timeline.svg');
    const s = await run(['timeline', trace, '-o', svg, '--title', 'T']);
    expect(s.code).toBe(0);
    expect(readFileSync(svg, 'utf8')).toBe(renderTimelineSvg(events, { title: 'T' }));
  });

  it('without -o the picture goes to stdout; --format chooses it', async () => {
    const r = await run(['timeline', trace, '--format', 'svg']);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('<svg')).toBe(true);
    expect(r.stdout).toContain(`icewire check timeline: ${trace}`);
  });

  it('a file that is not a trace: exit 1 naming the line; a missing file: exit 3; no file: usage (2)', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, `${traceLine(events[0]!)}{"t": 1}\n`);
    const r = await run(['timeline', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/line 2: not a trace event/);
    const missing = await run(['timeline', join(dir, 'nope.jsonl')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/cannot read/);
    const none = await run(['timeline']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/a trace file is required/);
    const fmt = await run(['timeline', trace, '--format', 'png']);
    expect(fmt.code).toBe(2);
    const help = await run(['timeline', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^icewire timeline TRACE\.jsonl/);
  });
});
