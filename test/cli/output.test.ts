/** Colour and progress rules of the `icewire` command (src/cli/output.ts): TTY only, NO_COLOR respected. */
import { describe, expect, it } from 'vitest';
import { intOption, Progress, styles, useColor, UsageError, type CliIo } from '../../src/cli/output.js';

function stream(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, chunks, write: (s: string) => (chunks.push(s), true) } as unknown as CliIo['stdout'] & { chunks: string[] };
}

describe('cli output', () => {
  it('colour only on a TTY, never with NO_COLOR or TERM=dumb', () => {
    expect(useColor(stream(true), {})).toBe(true);
    expect(useColor(stream(false), {})).toBe(false);
    expect(useColor(stream(true), { NO_COLOR: '1' })).toBe(false);
    expect(useColor(stream(true), { NO_COLOR: '' })).toBe(true); // no-color.org: set and non-empty
    expect(useColor(stream(true), { TERM: 'dumb' })).toBe(false);
    expect(styles(true).red('x')).toBe('\x1b[31mx\x1b[39m');
    expect(styles(false).red('x')).toBe('x');
  });

  it('progress goes to a TTY stderr only, and is cleared at the end', () => {
    const tty = stream(true);
    const p = new Progress({ stdout: stream(false), stderr: tty, env: {} });
    p.update('working');
    p.stop();
    expect(tty.chunks.join('')).toMatch(/working/);
    expect(tty.chunks.at(-1)).toBe('\r\x1b[2K');
    const pipe = stream(false);
    const q = new Progress({ stdout: stream(false), stderr: pipe, env: {} });
    q.update('working');
    q.stop();
    expect(pipe.chunks).toEqual([]);
  });

  it('integer options are checked', () => {
    expect(intOption('port', undefined, 3478, 0, 65535)).toBe(3478);
    expect(intOption('port', '0', 3478, 0, 65535)).toBe(0);
    for (const bad of ['-1', '65536', '1.5', 'x', '']) expect(() => intOption('port', bad, 3478, 0, 65535)).toThrow(UsageError);
  });
});
