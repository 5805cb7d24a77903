/**
 * `icewire gather`: every candidate this machine gets from the servers given, with its type, address, priority, the
 * server it came from and how long it took; and what went wrong, server by server. No default servers: without
 * `--stun`/`--turn` it gathers host candidates only. Each server is asked through an `IceAgent` of its own, so
 * every candidate and every error belongs to exactly one server.
 * @module
 */
import { parseArgs } from 'node:util';
import { canonicalIp, ipFamily } from '../ip.js';
import { IceAgent } from '../node/ice-agent.js';
import type { Candidate } from '../candidates/candidate.js';
import { normalizeIceServers, type IceServerConfig } from '../turnclient/uri.js';
import { ExitCode, intOption, Progress, showAddress, styles, useColor, UsageError, type CliIo } from './output.js';

export const gatherUsage = `icewire gather [--stun URL]... [--turn URL]... [--user U --credential P]
               [--interface NAME]... [--address IP]... [--include-loopback] [--timeout MS] [--json]

  Gathers candidates and prints each with its type, address, priority, the server it came from and the time it
  took, then each server's errors. Without --stun/--turn: host candidates only (there are no default servers).
  --stun URL          stun:host[:port] (repeatable)
  --turn URL          turn:host[:port][?transport=udp|tcp] or turns:... (repeatable; needs --user, --credential)
  --interface NAME    only addresses of this interface (repeatable)
  --address IP        only this local address (repeatable; a loopback address turns --include-loopback on)
  --include-loopback  loopback addresses are host candidates too (RFC 8445 §5.1.1.1 leaves them out)
  --timeout MS        bound on gathering, per server (default 5000)
  --json              one JSON object on stdout`;

/** One candidate as printed. */
export interface GatheredCandidate {
  readonly type: Candidate['type'];
  readonly address: string;
  readonly port: number;
  readonly priority: number;
  readonly component: number;
  readonly relatedAddress?: string;
  readonly relatedPort?: number;
  /** The server URL it came from, or `'host'`. */
  readonly server: string;
  /** Time since gathering started, ms. */
  readonly ms: number;
  readonly line: string;
}

interface Source {
  readonly server: string;
  readonly iceServers: IceServerConfig[];
}

export async function gather(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      stun: { type: 'string', multiple: true },
      turn: { type: 'string', multiple: true },
      user: { type: 'string' },
      credential: { type: 'string' },
      interface: { type: 'string', multiple: true },
      address: { type: 'string', multiple: true },
      'include-loopback': { type: 'boolean' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const timeoutMs = intOption('timeout', values.timeout, 5000, 100, 600_000);
  const turn = values.turn ?? [];
  if (turn.length > 0 && (values.user === undefined || values.credential === undefined)) throw new UsageError('--turn needs --user and --credential');
  const sources: Source[] = [{ server: 'host', iceServers: [] }];
  for (const url of values.stun ?? []) sources.push({ server: url, iceServers: [{ urls: url }] });
  for (const url of turn) sources.push({ server: url, iceServers: [{ urls: url, username: values.user!, credential: values.credential! }] });
  for (const [flag, url] of [...(values.stun ?? []).map((u) => ['stun', u] as const), ...turn.map((u) => ['turn', u] as const)]) {
    if (!url.toLowerCase().startsWith(flag)) throw new UsageError(`--${flag} ${url} is not a ${flag}: URL`);
  }
  try {
    normalizeIceServers(sources.flatMap((s) => s.iceServers));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const addresses = (values.address ?? []).map((a) => {
    if (ipFamily(a) === 0) throw new UsageError(`--address ${a} is not an IP address`);
    return canonicalIp(a);
  });
  const interfaces = values.interface ?? [];
  const includeLoopback = values['include-loopback'] === true || addresses.some((a) => a === '::1' || a.startsWith('127.'));

  const progress = values.json ? undefined : new Progress(io);
  progress?.update(`gathering from ${sources.length - 1} server(s)`);
  const start = performance.now();
  const results = await Promise.all(
    sources.map(async (source) => {
      const agent = new IceAgent({
        iceServers: source.iceServers,
        includeLoopback,
        gatherTimeoutMs: timeoutMs,
        pacer: false,
        ...(addresses.length > 0 ? { addressFilter: (a: string) => addresses.includes(a) } : {}),
        ...(interfaces.length > 0 ? { interfaceFilter: (n: string) => interfaces.includes(n) } : {}),
      });
      const candidates: GatheredCandidate[] = [];
      const errors: string[] = [];
      agent.on('warning', (m) => errors.push(m));
      agent.on('candidate', (c) => {
        if (source.server !== 'host' && c.type === 'host') return; // the host-only agent lists those
        candidates.push({
          type: c.type,
          address: c.address,
          port: c.port,
          priority: c.priority,
          component: c.component,
          ...(c.relatedAddress !== undefined ? { relatedAddress: c.relatedAddress, relatedPort: c.relatedPort! } : {}),
          server: source.server,
          ms: Math.round((performance.now() - start) * 10) / 10,
          line: `candidate:${c.foundation} ${c.component} ${c.transport} ${c.priority} ${c.address} ${c.port} typ ${c.type}`,
        });
      });
      let fatal: string | undefined;
      try {
        await agent.gather();
      } catch (e) {
        fatal = (e as Error).message;
      } finally {
        await agent.close();
      }
      const notes: string[] = [];
      if (fatal === undefined && candidates.length === 0) {
        if (source.server === 'host') errors.push('no host candidate');
        // A server that fails says so in a warning; one that answered with a host address itself (no NAT between)
        // yields a server-reflexive candidate the gatherer drops as redundant (RFC 8445 §5.1.3).
        else if (errors.length === 0) notes.push('answered with a host address (no NAT on the path): no candidate of its own');
      }
      return { server: source.server, candidates, errors, notes, fatal };
    }),
  );
  progress?.stop();
  const noLocal = results[0]!.fatal !== undefined;
  const ok = !noLocal && results.every((r) => r.errors.length === 0 && r.fatal === undefined);
  const elapsedMs = Math.round(performance.now() - start);
  if (values.json) {
    const report = {
      ok,
      elapsedMs,
      candidates: results.flatMap((r) => r.candidates).sort((a, b) => a.ms - b.ms),
      servers: results.map((r) => ({ server: r.server, candidates: r.candidates.length, errors: r.fatal ? [r.fatal, ...r.errors] : r.errors, notes: r.notes })),
    };
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const s = styles(useColor(io.stdout, io.env));
    const lines: string[] = [];
    for (const c of results.flatMap((r) => r.candidates).sort((a, b) => a.ms - b.ms)) {
      const type = c.type === 'host' ? c.type : c.type === 'srflx' ? s.cyan(c.type) : s.green(c.type);
      const related = c.relatedAddress !== undefined ? s.dim(` (base ${showAddress({ address: c.relatedAddress, port: c.relatedPort! })})`) : '';
      lines.push(`${type.padEnd(5 + (type.length - c.type.length))}  ${showAddress(c).padEnd(28)} prio ${String(c.priority).padEnd(10)}  ${c.ms.toFixed(1).padStart(7)} ms  ${c.server}${related}`);
    }
    if (lines.length === 0) lines.push(s.yellow('no candidates'));
    for (const r of results) {
      for (const e of r.fatal ? [r.fatal, ...r.errors] : r.errors) lines.push(`${s.red('error')}  ${r.server}: ${e}`);
      for (const n of r.notes) lines.push(`${s.yellow('note')}   ${r.server}: ${n}`);
    }
    lines.push(s.dim(`${results.reduce((n, r) => n + r.candidates.length, 0)} candidates in ${elapsedMs} ms`));
    io.stdout.write(`${lines.join('\n')}\n`);
  }
  return noLocal ? ExitCode.Local : ok ? ExitCode.Ok : ExitCode.Failed;
}
