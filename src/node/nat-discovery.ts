/**
 * The Node edge of {@link NatDiscovery} (RFC 5780): two UDP sockets on one local address (the tested base and the
 * hairpin base), a timer, and the sans-IO machine in between.
 * @module
 */
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { InvalidStateError } from '../errors.js';
import { canonicalIp, ipFamily } from '../ip.js';
import { NatDiscovery, type NatDiscoveryOptions, type NatDiscoveryResult, type NatDiscoveryStep } from '../stun/nat-discovery.js';
import type { TransportAddress } from '../types.js';
import { cryptoRandom } from './random.js';

/** Options of {@link discoverNat}. */
export interface DiscoverNatOptions extends Pick<NatDiscoveryOptions, 'timing' | 'spacingMs'> {
  /** The server's primary address and port (an IP literal: resolve names first). */
  readonly server: TransportAddress;
  /**
   * The local address to test from. Default: the one the system routes to `server` from (learnt by connecting a
   * UDP socket, which sends nothing).
   */
  readonly localAddress?: string;
  /** Run the hairpinning test from a second port. Default true. */
  readonly hairpin?: boolean;
  /** Called as each test starts (for progress output). */
  readonly onStep?: (step: NatDiscoveryStep) => void;
  /** Aborting closes the sockets and rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

function bind(address: string): Promise<Socket> {
  const v6 = ipFamily(address) === 6;
  const s = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
  return new Promise((resolve, reject) => {
    s.once('error', (e) => {
      s.close();
      reject(e);
    });
    s.bind({ address, port: 0, exclusive: true }, () => {
      s.removeAllListeners('error');
      resolve(s);
    });
  });
}

/** The local address the system would send to `server` from. */
export async function routeSourceAddress(server: TransportAddress): Promise<string> {
  const s = createSocket(ipFamily(server.address) === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(server.port, server.address, () => resolve());
    });
    return s.address().address;
  } finally {
    s.close();
  }
}

/**
 * Runs RFC 5780 NAT behaviour discovery against `server` from fresh sockets and resolves with the result (which says
 * in `problems` what could not be found). Rejects only for local trouble: a bad address, a bind error, an abort.
 */
export async function discoverNat(options: DiscoverNatOptions): Promise<NatDiscoveryResult> {
  if (ipFamily(options.server.address) === 0) throw new RangeError(`server must be an IP literal, got ${options.server.address}`);
  options.signal?.throwIfAborted();
  const localIp = options.localAddress ?? (await routeSourceAddress(options.server));
  const sockets: Socket[] = [await bind(localIp)];
  try {
    if (options.hairpin ?? true) sockets.push(await bind(localIp));
  } catch (e) {
    sockets[0]!.close();
    throw e;
  }
  const at = (s: Socket): TransportAddress => ({ address: s.address().address, port: s.address().port });
  const bases = sockets.map(at);
  const machine = new NatDiscovery({
    random: cryptoRandom,
    local: bases[0]!,
    server: options.server,
    ...(bases[1] ? { hairpinLocal: bases[1] } : {}),
    ...(options.timing ? { timing: options.timing } : {}),
    ...(options.spacingMs !== undefined ? { spacingMs: options.spacingMs } : {}),
  });
  return new Promise<NatDiscoveryResult>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (error: unknown, result?: NatDiscoveryResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      for (const s of sockets) s.close();
      if (result) resolve(result);
      else reject(error);
    };
    const onAbort = () => finish(options.signal!.reason ?? new InvalidStateError('aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const drain = () => {
      for (let d = machine.pollTransmit(); d; d = machine.pollTransmit()) {
        const s = sockets[bases.findIndex((b) => canonicalIp(b.address) === canonicalIp(d.local.address) && b.port === d.local.port)] ?? sockets[0]!;
        s.send(d.data, d.remote.port, d.remote.address, () => undefined); // a failed send is a lost packet: the test times out
      }
      for (let e = machine.pollEvent(); e; e = machine.pollEvent()) {
        if (e.type === 'step') options.onStep?.(e.step);
        else return finish(undefined, e.result);
      }
      clearTimeout(timer);
      const t = machine.pollTimeout();
      if (t !== undefined) {
        timer = setTimeout(() => {
          machine.handleTimeout(performance.now());
          drain();
        }, Math.max(0, t - performance.now()));
      }
    };
    sockets.forEach((s, i) => {
      s.on('error', () => undefined); // ICMP errors after bind: the test just sees no answer
      s.on('message', (msg, rinfo) => {
        if (settled) return;
        machine.handleReceive(performance.now(), { local: bases[i]!, remote: { address: rinfo.address, port: rinfo.port }, data: new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength) });
        drain();
      });
    });
    machine.start(performance.now());
    drain();
  });
}
