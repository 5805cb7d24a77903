/**
 * DNS resolution of a TURN URI (RFC 5928 §3 via SRV, RFC 8656 §5 service names), with an injectable resolver: the
 * default uses node:dns/promises; tests pass a fake. The ordering logic is pure and lives in `src/turnclient/uri.ts`.
 * {@link resolveIceServers} turns a whole RTCIceServer list into the resolved servers an agent gathers from.
 * @module
 */
import { promises as dns } from 'node:dns';
import { ipFamily } from '../ip.js';
import type { RelayServerConfig } from '../candidates/gatherer.js';
import { normalizeIceServers, orderSrvRecords, resolutionPlan, type IceServerConfig, type SrvRecord, type TurnUri } from '../turnclient/uri.js';
import type { RandomSource, TransportAddress, TransportProtocol } from '../types.js';
import { cryptoRandom } from './random.js';

/** The DNS queries needed. `resolveSrv` resolves to [] (or rejects) when there is no record. */
export interface TurnDnsResolver {
  resolveSrv(name: string): Promise<readonly SrvRecord[]>;
  /** A and AAAA addresses of `host` (IPv6 first or IPv4 first, as the resolver likes). */
  lookup(host: string): Promise<readonly string[]>;
}

/** The production resolver on node:dns/promises. */
export const nodeTurnResolver: TurnDnsResolver = {
  resolveSrv: async (name) => await dns.resolveSrv(name),
  lookup: async (host) => (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address),
};

/** One address to try, in order. */
export interface TurnServerAddress extends TransportAddress {
  readonly transport: TransportProtocol;
  /** The host name the URI named (for TLS certificate checks), or the IP literal. */
  readonly hostname: string;
}

/**
 * Resolves `uri` to the ordered list of server addresses to try (RFC 5928 §3): an IP literal as is; an explicit port
 * → A/AAAA only; otherwise SRV `_turn._udp` / `_turn._tcp` / `_turns._tcp` ordered by priority and weight, each
 * target looked up, falling back to A/AAAA of the host on the default port when SRV yields nothing. DNS failures of
 * individual targets are skipped; an empty result means the server cannot be reached.
 */
export async function resolveTurnServers(
  uri: TurnUri,
  resolver: TurnDnsResolver = nodeTurnResolver,
  random: RandomSource = cryptoRandom,
): Promise<TurnServerAddress[]> {
  const plan = resolutionPlan(uri);
  const transport = uri.transport;
  const hostname = uri.host;
  if (plan.kind === 'literal') return [{ address: plan.address, port: plan.port, transport, hostname }];
  const lookup = async (host: string, port: number): Promise<TurnServerAddress[]> => {
    try {
      const addrs = await resolver.lookup(host);
      return addrs.filter((a) => ipFamily(a) !== 0).map((address) => ({ address, port, transport, hostname }));
    } catch {
      return [];
    }
  };
  if (plan.kind === 'host') return await lookup(plan.host, plan.port);
  let records: readonly SrvRecord[] = [];
  try {
    records = await resolver.resolveSrv(plan.name);
  } catch {
    records = [];
  }
  if (records.length > 0) {
    const out: TurnServerAddress[] = [];
    for (const r of orderSrvRecords(records, random)) out.push(...(await lookup(r.name, r.port)));
    // A "." target (service explicitly not offered) yields nothing and must not fall back (RFC 2782).
    return out;
  }
  return await lookup(plan.host, plan.fallbackPort);
}

/** An RTCIceServer list, resolved: what the gatherer contacts, plus what the TLS check needs. */
export interface ResolvedIceServers {
  readonly stunServers: TransportAddress[];
  readonly turnServers: RelayServerConfig[];
  /** Host names of TCP/TLS TURN servers by `address|port`, for the TLS certificate check. */
  readonly turnNames: Map<string, string>;
}

/**
 * Resolves `stun:`/`turn:`/`turns:` servers: every address of a STUN host name, the first address of each TURN URI
 * (RFC 5928 order). A TURN server that does not resolve is reported through `warn` and left out.
 */
export async function resolveIceServers(
  servers: readonly IceServerConfig[],
  resolver: TurnDnsResolver,
  random: RandomSource,
  warn: (message: string) => void,
): Promise<ResolvedIceServers> {
  const { stun, turn } = normalizeIceServers(servers);
  const stunServers: TransportAddress[] = [];
  for (const s of stun) {
    if (ipFamily(s.host) !== 0) stunServers.push({ address: s.host, port: s.port });
    else for (const a of await resolver.lookup(s.host).catch(() => [] as string[])) stunServers.push({ address: a, port: s.port });
  }
  const turnServers: RelayServerConfig[] = [];
  const turnNames = new Map<string, string>();
  for (const t of turn) {
    const first = (await resolveTurnServers(t.uri, resolver, random))[0];
    if (first) {
      turnServers.push({ server: { address: first.address, port: first.port }, transport: t.uri.transport, username: t.username, credential: t.password });
      if (t.uri.transport !== 'udp') turnNames.set(`${first.address}|${first.port}`, first.hostname);
    } else warn(`TURN server ${t.uri.host} did not resolve`);
  }
  return { stunServers, turnServers, turnNames };
}
