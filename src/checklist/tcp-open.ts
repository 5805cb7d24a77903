/**
 * Asking the edge for an ICE-TCP connection (RFC 6544 §7.1): "it first opens a TCP connection, if none yet exists,
 * for the 5-tuple defined by the candidate pair". Only active and simultaneous-open candidates open connections.
 * @module
 */
import { canonicalIp } from '../ip.js';
import { Rfc4571Framer } from '../stun/rfc4571.js';
import type { AgentContext } from './context.js';
import type { CandidatePair } from './pair.js';
import { pairRouteKey, type TcpConnection } from './tcp-connections.js';

/**
 * Makes sure a connection for `pair`'s route is open or being opened (a `tcp-connect` event when a new one is
 * needed). Returns false when the pair's local candidate never opens connections (passive, or not TCP).
 */
export function requestConnection(ctx: AgentContext, now: number, pair: CandidatePair): boolean {
  const local = pair.local;
  if (local.transport !== 'tcp' || (local.tcpType !== 'active' && local.tcpType !== 'so')) return false;
  const route = pairRouteKey(pair);
  if (ctx.tcp.byRoute.has(route)) return true; // open (the check went) or still connecting
  const conn: TcpConnection = {
    id: ctx.tcp.nextId(),
    direction: 'active',
    state: 'connecting',
    // An active candidate connects from any port of its interface (§7.1: "SHOULD be opened from an unallocated
    // port"); a simultaneous-open one from its own port, which the peer signalled against.
    local: { address: canonicalIp(local.base.address), port: local.tcpType === 'so' ? local.base.port : 0 },
    remote: { address: pair.remote.address, port: pair.remote.port },
    candidate: local,
    stream: pair.stream,
    route,
    wire: undefined,
    framer: new Rfc4571Framer(undefined, true),
    deadline: now + ctx.config.tcpConnectTimeoutMs,
    validated: false,
    answered: false,
    dataPair: undefined,
  };
  ctx.tcp.add(conn);
  ctx.deadlines.set('tcp', ctx.tcp.deadline());
  ctx.events.push({ type: 'tcp-connect', id: conn.id, local: conn.local, remote: conn.remote });
  return true;
}
