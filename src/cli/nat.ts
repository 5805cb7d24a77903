/**
 * `icewire nat`: RFC 5780 NAT behaviour discovery against one server, reported in RFC 4787 terms.
 * @module
 */
import { lookup } from 'node:dns/promises';
import { parseArgs } from 'node:util';
import { ipFamily } from '../ip.js';
import { discoverNat } from '../node/nat-discovery.js';
import type { NatDiscoveryStep } from '../stun/nat-discovery.js';
import { normalizeIceServers } from '../turnclient/uri.js';
import { ExitCode, intOption, Progress, showAddress, styles, useColor, UsageError, type CliIo } from './output.js';

export const natUsage = `icewire nat --stun URL [--local IP] [--no-hairpin] [--rto MS] [--json]

  Runs RFC 5780 NAT behaviour discovery against a STUN server that supports it (OTHER-ADDRESS) and reports the
  mapping and filtering behaviour (RFC 4787: endpoint-independent, address-dependent, address-and-port-dependent)
  and whether the NAT hairpins. Exit code 1 when the server did not answer or the behaviour could not be found.
  --stun URL      stun:host[:port] (required; a name is resolved once)
  --local IP      local address to test from (default: the one routed to the server)
  --no-hairpin    skip the hairpinning test (it uses a second local port)
  --rto MS        first retransmission time-out (default 500; a silent test waits 7 x RTO)
  --json          one JSON object on stdout`;

const STEP_TEXT: Record<NatDiscoveryStep, string> = {
  connectivity: 'asking the server (RFC 5780 §4.2)',
  filtering: 'testing filtering (§4.4)',
  mapping: 'testing mapping (§4.3)',
  hairpinning: 'testing hairpinning (§3.4)',
};

export async function nat(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      stun: { type: 'string' },
      local: { type: 'string' },
      'no-hairpin': { type: 'boolean' },
      rto: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.stun === undefined) throw new UsageError('--stun URL is required (there are no default servers)');
  let host: string;
  let port: number;
  try {
    const [s] = normalizeIceServers([{ urls: values.stun }]).stun;
    if (s === undefined || s.secure) throw new UsageError(`--stun ${values.stun}: expected stun:host[:port]`);
    ({ host, port } = s);
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError((e as Error).message);
  }
  if (values.local !== undefined && ipFamily(values.local) === 0) throw new UsageError(`--local ${values.local} is not an IP address`);
  const rtoMs = intOption('rto', values.rto, 500, 10, 10_000);
  let address = host;
  if (ipFamily(host) === 0) {
    try {
      address = (await lookup(host)).address;
    } catch (e) {
      io.stderr.write(`icewire nat: cannot resolve ${host}: ${(e as Error).message}\n`);
      return ExitCode.Failed;
    }
  }
  const progress = values.json ? undefined : new Progress(io);
  let result;
  try {
    result = await discoverNat({
      server: { address, port },
      timing: { rtoMs, rc: 3, rm: 4 },
      hairpin: values['no-hairpin'] !== true,
      ...(values.local !== undefined ? { localAddress: values.local } : {}),
      onStep: (step) => progress?.update(STEP_TEXT[step]),
    });
  } catch (e) {
    progress?.stop();
    io.stderr.write(`icewire nat: ${(e as Error).message}\n`);
    return ExitCode.Local;
  } finally {
    progress?.stop();
  }
  const ok = result.mapping !== undefined && result.filtering !== undefined;
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ ok, server: { address, port }, ...result }, null, 2)}\n`);
  } else {
    const s = styles(useColor(io.stdout, io.env));
    const rate = (b: string | undefined) => (b === undefined ? s.yellow('unknown') : b === 'endpoint-independent' ? s.green(b) : s.red(b));
    const lines = [
      `server        ${showAddress({ address, port })}${result.otherAddress ? s.dim(` (other address ${showAddress(result.otherAddress)})`) : ''}`,
      `UDP           ${result.udp ? s.green('yes') : s.red('no answer')}`,
    ];
    if (result.mappedAddress) lines.push(`mapped        ${showAddress(result.mappedAddress)}${result.natted ? '' : s.dim(' (no NAT: the local address itself)')}`);
    lines.push(`mapping       ${rate(result.mapping)}`, `filtering     ${rate(result.filtering)}`);
    lines.push(`hairpinning   ${result.hairpinning === undefined ? s.yellow(values['no-hairpin'] ? 'not tested' : 'unknown') : result.hairpinning ? s.green('yes') : s.red('no')}`);
    for (const p of result.problems) lines.push(`${s.yellow('note')}          ${p}`);
    io.stdout.write(`${lines.join('\n')}\n`);
  }
  return ok ? ExitCode.Ok : ExitCode.Failed;
}
