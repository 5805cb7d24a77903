/**
 * `icewire stun-server`: the built-in STUN Binding server (RFC 8489), with RFC 5780 when given a second address,
 * until SIGINT or SIGTERM.
 * @module
 */
import { parseArgs } from 'node:util';
import { ipFamily } from '../ip.js';
import { startStunServer, type RunningStunServer } from '../node/stun-server.js';
import { ExitCode, intOption, showAddress, styles, useColor, UsageError, type CliIo } from './output.js';

export const stunServerUsage = `icewire stun-server [--address IP] [--port P] [--alt-address IP2] [--alt-port P2] [--json]

  Runs the built-in STUN server until SIGINT or SIGTERM, then closes its sockets and prints its counters. With
  --alt-address it also serves RFC 5780 NAT behaviour discovery, listening on both ports of both addresses.
  --address IP      address to bind (default 127.0.0.1)
  --port P          port (default 3478; 0 picks a free one)
  --alt-address IP2 second address, same family (turns RFC 5780 on)
  --alt-port P2     second port (default: P + 1, or a free one when P is 0)
  --json            JSON lines on stdout: {"listening": ...}, then {"stats": ...}`;

export async function stunServer(argv: readonly string[], io: CliIo, signals: NodeJS.EventEmitter = process): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      address: { type: 'string' },
      port: { type: 'string' },
      'alt-address': { type: 'string' },
      'alt-port': { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const address = values.address ?? '127.0.0.1';
  if (ipFamily(address) === 0) throw new UsageError(`--address ${address} is not an IP address`);
  const port = intOption('port', values.port, 3478, 0, 65535);
  const altAddress = values['alt-address'];
  if (altAddress === undefined && values['alt-port'] !== undefined) throw new UsageError('--alt-port needs --alt-address');
  if (altAddress !== undefined && ipFamily(altAddress) !== ipFamily(address)) throw new UsageError(`--alt-address ${altAddress} must be an IP address of the same family as ${address}`);
  const altPort = intOption('alt-port', values['alt-port'], port === 0 || port === 65535 ? 0 : port + 1, 0, 65535);
  if (altAddress !== undefined && altPort !== 0 && altPort === port) throw new UsageError('--alt-port must differ from --port');
  let server: RunningStunServer;
  try {
    server = await startStunServer({ address, port, ...(altAddress !== undefined ? { alternate: { address: altAddress, port: altPort } } : {}) });
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    io.stderr.write(`icewire stun-server: ${(e as Error).message}\n`);
    return ExitCode.Local;
  }
  const s = styles(useColor(io.stdout, io.env));
  const primary = { address: server.address, port: server.port };
  if (values.json) io.stdout.write(`${JSON.stringify({ listening: { ...primary, alternate: server.alternate ?? null } })}\n`);
  else io.stdout.write(`${s.green('listening')} on ${showAddress(primary)}${server.alternate ? ` and ${showAddress(server.alternate)} (RFC 5780)` : ''}; stop with Ctrl-C\n`);
  const signal = await new Promise<string>((resolve) => {
    const on = (name: string) => () => {
      signals.off('SIGINT', onInt);
      signals.off('SIGTERM', onTerm);
      resolve(name);
    };
    const onInt = on('SIGINT');
    const onTerm = on('SIGTERM');
    signals.on('SIGINT', onInt);
    signals.on('SIGTERM', onTerm);
  });
  await server.close();
  const { received, successResponses, answered, changedOriginResponses, sendErrors } = server.stats;
  if (values.json) io.stdout.write(`${JSON.stringify({ stats: { signal, received, answered, successResponses, changedOriginResponses, sendErrors } })}\n`);
  else io.stdout.write(`${signal}: closed after ${received} requests, ${answered} answered (${changedOriginResponses} from the other address or port)\n`);
  return ExitCode.Ok;
}
