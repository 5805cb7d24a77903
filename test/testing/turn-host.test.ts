import { describe, expect, it } from 'vitest';
import { Attr, attr, getAttribute } from '../../src/stun/attributes.js';
import { ErrorCode, StunMethod } from '../../src/stun/constants.js';
import { longTermKey } from '../../src/stun/integrity.js';
import { decodeStunMessage, encodeStunMessage, verifyIntegrity, type DecodedStunMessage, type StunAttribute } from '../../src/stun/message.js';
import { decodeChannelData, encodeChannelData } from '../../src/turnclient/channel-data.js';
import { PROTOCOL_UDP, TurnAttr } from '../../src/turnclient/attributes.js';
import { TurnClient, type TurnClientEvent } from '../../src/turnclient/turn-client.js';
import type { TransportAddress } from '../../src/types.js';
import { ScriptedEndpoint } from '../../src/testing/endpoint.js';
import { NatPresets, type NatBehaviorOptions } from '../../src/testing/nat.js';
import { SeededRandom } from '../../src/testing/random.js';
import { addTurnServer, type TurnHostOptions, type TurnServerEvent } from '../../src/testing/turn-host.js';
import { VirtualNetwork, type Host } from '../../src/testing/virtual-network.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A hand-written TURN client: builds requests with the STUN encoder and reads answers off a ScriptedEndpoint. */
class ScriptedTurnClient {
  // Only ports 40000-40099 (its own sockets), so that another client on the same host gets its own traffic.
  readonly endpoint = new ScriptedEndpoint({ accept: (d) => d.local.port >= 40000 && d.local.port < 40100 });
  readonly random: SeededRandom;
  nonce: string | undefined;
  realm: string | undefined;
  #seen = 0;

  constructor(
    readonly net: VirtualNetwork,
    readonly host: Host,
    readonly local: TransportAddress,
    readonly server: TransportAddress,
    public username = 'user',
    public password = 'pass',
  ) {
    host.attach(this.endpoint);
    this.random = net.random.fork(`client:${local.port}`);
  }

  get key(): Uint8Array {
    return longTermKey(this.username, this.realm ?? '', this.password);
  }

  /**
   * Sends a request and returns its response (after driving the network). A 438 is retried once with the new nonce
   * (nonces are per source address, so a request from another port first meets one), unless `retryStale` is false.
   */
  request(
    method: number,
    build: (tx: Uint8Array) => StunAttribute[],
    options: { auth?: boolean; tx?: Uint8Array; from?: TransportAddress; retryStale?: boolean } = {},
  ): DecodedStunMessage {
    const r = this.#request(method, build, options);
    if (options.retryStale === false || options.auth === false || getAttribute(r, Attr.ERROR_CODE)?.code !== 438) return r;
    return this.#request(method, build, { ...options, tx: this.random.bytes(12) });
  }

  #request(method: number, build: (tx: Uint8Array) => StunAttribute[], options: { auth?: boolean; tx?: Uint8Array; from?: TransportAddress }): DecodedStunMessage {
    const tx = options.tx ?? this.random.bytes(12);
    const auth = options.auth ?? true;
    const attributes = build(tx);
    if (auth) {
      attributes.push(attr(Attr.USERNAME, this.username, tx), attr(Attr.REALM, this.realm!, tx), attr(Attr.NONCE, this.nonce!, tx));
    }
    const data = encodeStunMessage({ method, cls: 'request', transactionId: tx, attributes }, auth ? { integrityKey: this.key, fingerprint: true } : { fingerprint: true });
    this.endpoint.send(options.from ?? this.local, this.server, data);
    this.net.settle();
    const answers = this.takeFromServer().map((d) => decodeStunMessage(d)).filter((m) => Buffer.from(m.transactionId).equals(Buffer.from(tx)));
    const r = answers.at(-1);
    if (!r) throw new Error('no response');
    const n = getAttribute(r, Attr.NONCE);
    if (n !== undefined) this.nonce = n;
    const realm = getAttribute(r, Attr.REALM);
    if (realm !== undefined) this.realm = realm;
    return r;
  }

  /** Unauthenticated Allocate to learn realm and nonce, then the authenticated one. */
  allocate(extra: (tx: Uint8Array) => StunAttribute[] = () => []): DecodedStunMessage {
    const challenge = this.request(StunMethod.Allocate, (tx) => [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, tx)], { auth: false });
    expect(challenge.cls).toBe('error');
    expect(getAttribute(challenge, Attr.ERROR_CODE)?.code).toBe(401);
    return this.request(StunMethod.Allocate, (tx) => [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, tx), ...extra(tx)]);
  }

  indication(method: number, build: (tx: Uint8Array) => StunAttribute[]): void {
    const tx = this.random.bytes(12);
    this.endpoint.send(this.local, this.server, encodeStunMessage({ method, cls: 'indication', transactionId: tx, attributes: build(tx) }));
    this.net.settle();
  }

  /** Datagrams received from the server since the last call. */
  takeFromServer(): Uint8Array[] {
    const out = this.endpoint.received.slice(this.#seen).map((r) => r.datagram.data);
    this.#seen = this.endpoint.received.length;
    return out;
  }
}

const code = (m: DecodedStunMessage): number | undefined => getAttribute(m, Attr.ERROR_CODE)?.code;

/** TURN server and a peer on the public network; a client behind a symmetric NAT. */
function setup(turnOptions: TurnHostOptions = {}, seed: string | number = 'turn', natOptions: NatBehaviorOptions = {}) {
  const net = new VirtualNetwork({ seed });
  const turn = addTurnServer(net, { address: '198.51.100.10', users: { user: 'pass', other: 'secret' }, ...turnOptions });
  const nat = net.addNat({ publicIp: '203.0.113.20', ...NatPresets.symmetric, ...natOptions });
  const ch = net.addHost({ name: 'client', network: nat.lan });
  const client = new ScriptedTurnClient(net, ch, ch.address(40000), turn.address);
  const peerHost = net.addHost({ name: 'peer', address: '198.51.100.30' });
  const peer = new ScriptedEndpoint();
  peerHost.attach(peer);
  return { net, turn, nat, ch, client, peerHost, peer, P: peerHost.address(7000) };
}

describe('TURN server host: relaying through a symmetric NAT', () => {
  it('allocates, then relays with Send/Data indications and with ChannelData, then deletes on Refresh 0', () => {
    const { net, turn, nat, client, peer, peerHost, P } = setup();

    // Allocate: 401 challenge, then success with integrity.
    const ok = client.allocate();
    expect(ok.cls).toBe('success');
    expect(verifyIntegrity(ok, client.key)).toBe('ok');
    const relayed = getAttribute(ok, TurnAttr.XOR_RELAYED_ADDRESS)!;
    expect(relayed.address).toBe('198.51.100.10');
    expect(relayed.port).toBeGreaterThanOrEqual(49152);
    expect(getAttribute(ok, TurnAttr.LIFETIME)).toBe(600);
    // XOR-MAPPED-ADDRESS is the symmetric NAT's mapping towards the server.
    const mapped = getAttribute(ok, Attr.XOR_MAPPED_ADDRESS)!;
    expect(nat.mappings().find((m) => m.destination?.port === turn.address.port)?.external).toEqual(mapped);
    expect(turn.attachment.events[0]).toMatchObject({ type: 'allocation-created', client: mapped, relayed: [relayed], username: 'user' });

    // No permission yet: the peer's datagram is dropped by the server.
    peerHost.send(P, relayed, bytes('too early'));
    net.settle();
    expect(client.takeFromServer()).toHaveLength(0);
    expect(turn.server.stats.dropped['no-permission']).toBe(1);

    // CreatePermission, then Send indication -> the peer sees the relayed address as source.
    const perm = client.request(StunMethod.CreatePermission, (tx) => [attr(TurnAttr.XOR_PEER_ADDRESS, { address: P.address, port: 1 }, tx)]);
    expect(perm.cls).toBe('success');
    client.indication(StunMethod.Send, (tx) => [attr(TurnAttr.XOR_PEER_ADDRESS, P, tx), attr(TurnAttr.DATA, bytes('hello peer'), tx)]);
    expect(peer.received).toHaveLength(1);
    expect(peer.received[0]!.datagram.remote).toEqual(relayed);
    expect(text(peer.received[0]!.datagram.data)).toBe('hello peer');

    // Peer -> relayed address -> Data indication to the client, through the NAT.
    peer.send(P, relayed, bytes('hello client'));
    net.settle();
    const [dataInd] = client.takeFromServer();
    const di = decodeStunMessage(dataInd!);
    expect(di.cls).toBe('indication');
    expect(di.method).toBe(StunMethod.Data);
    expect(getAttribute(di, TurnAttr.XOR_PEER_ADDRESS)).toEqual(P);
    expect(text(getAttribute(di, TurnAttr.DATA)!)).toBe('hello client');

    // ChannelBind 0x4001 to the peer: the peer's data now arrives as ChannelData.
    const bind = client.request(StunMethod.ChannelBind, (tx) => [attr(TurnAttr.CHANNEL_NUMBER, 0x4001, tx), attr(TurnAttr.XOR_PEER_ADDRESS, P, tx)]);
    expect(bind.cls).toBe('success');
    peer.send(P, relayed, bytes('via channel'));
    net.settle();
    const [cdRaw] = client.takeFromServer();
    expect(decodeChannelData(cdRaw!)).toMatchObject({ channel: 0x4001 });
    expect(text(decodeChannelData(cdRaw!)!.data)).toBe('via channel');

    // Client ChannelData -> peer.
    client.endpoint.send(client.local, client.server, encodeChannelData(0x4001, bytes('channel to peer')));
    net.settle();
    expect(peer.received.at(-1)!.datagram.remote).toEqual(relayed);
    expect(text(peer.received.at(-1)!.datagram.data)).toBe('channel to peer');
    expect(turn.server.stats).toMatchObject({ toPeer: 2, toClient: 2 });

    // Refresh with LIFETIME 0 deletes the allocation; the relayed port is gone.
    const del = client.request(StunMethod.Refresh, (tx) => [attr(TurnAttr.LIFETIME, 0, tx)]);
    expect(del.cls).toBe('success');
    expect(getAttribute(del, TurnAttr.LIFETIME)).toBe(0);
    expect(turn.attachment.events.at(-1)).toMatchObject({ type: 'allocation-deleted', reason: 'refresh' });
    peer.send(P, relayed, bytes('after delete'));
    net.settle();
    expect(client.takeFromServer()).toHaveLength(0);
    expect(net.trace.at(-1)).toMatchObject({ kind: 'drop', reason: 'unclaimed', node: 'turn' });
    // A second Refresh on the deleted allocation is a 437 (RFC 8656 §8.2 note).
    expect(code(client.request(StunMethod.Refresh, (tx) => [attr(TurnAttr.LIFETIME, 0, tx)]))).toBe(ErrorCode.AllocationMismatch);
  });

  it('works with the icewire TurnClient behind a symmetric NAT (allocate, permission, channel, data both ways)', () => {
    const { net, turn, ch, peer, P } = setup({}, 'turnclient');
    const events: TurnClientEvent[] = [];
    const tc = new TurnClient({ server: turn.address, local: ch.address(41000), username: 'user', password: 'pass', random: net.random.fork('tc') });
    ch.attach(tc, { onEvent: (e) => events.push(e) });
    tc.allocate(net.now);
    expect(net.runUntilTrue(() => events.some((e) => e.type === 'allocated'), 10_000)).toBe(true);
    const relayed = tc.relayed[0]!;
    tc.send(net.now, P, bytes('from turnclient'));
    expect(net.runUntilTrue(() => peer.received.length > 0, 10_000)).toBe(true);
    expect(peer.received[0]!.datagram.remote).toEqual(relayed);
    peer.send(P, relayed, bytes('to turnclient'));
    expect(net.runUntilTrue(() => events.some((e) => e.type === 'data'), 10_000)).toBe(true);
    const data = events.find((e) => e.type === 'data');
    expect(data && data.type === 'data' && text(data.data)).toBe('to turnclient');
    expect(turn.server.allocations(net.now)).toHaveLength(1);
  });
});

describe('TURN server: authentication (RFC 8489 §9.2.4, RFC 8656 §5)', () => {
  it('challenges with REALM and NONCE, rejects a wrong password or unknown user with 401, and missing REALM with 400', () => {
    const { client } = setup();
    const ch = client.request(StunMethod.Allocate, (tx) => [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, tx)], { auth: false });
    expect(code(ch)).toBe(401);
    expect(client.realm).toBe('icewire.test');
    expect(client.nonce).toMatch(/^[0-9a-f]{24}$/);
    expect(ch.integrityOffset).toBe(-1);
    client.password = 'wrong';
    expect(code(client.request(StunMethod.Allocate, (tx) => [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, tx)]))).toBe(401);
    client.username = 'mallory';
    expect(code(client.request(StunMethod.Allocate, (tx) => [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, tx)]))).toBe(401);
    // Integrity present but no REALM/NONCE.
    client.username = 'user';
    client.password = 'pass';
    const tx = client.random.bytes(12);
    const bad = encodeStunMessage(
      { method: StunMethod.Allocate, cls: 'request', transactionId: tx, attributes: [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, tx), attr(Attr.USERNAME, 'user', tx)] },
      { integrityKey: client.key },
    );
    client.endpoint.send(client.local, client.server, bad);
    client.net.settle();
    expect(code(decodeStunMessage(client.takeFromServer()[0]!))).toBe(400);
  });

  it('answers 438 with a fresh nonce once nonces expire, and the retry succeeds', () => {
    const { client, turn, net } = setup({ nonceLifetimeMs: 60_000 });
    expect(client.allocate().cls).toBe('success');
    const old = client.nonce;
    net.runFor(61_000);
    const stale = client.request(StunMethod.Refresh, (tx) => [attr(TurnAttr.LIFETIME, 600, tx)], { retryStale: false });
    expect(code(stale)).toBe(438);
    expect(client.nonce).not.toBe(old);
    expect(client.request(StunMethod.Refresh, (tx) => [attr(TurnAttr.LIFETIME, 600, tx)]).cls).toBe('success');
    turn.server.expireNonces();
    expect(code(client.request(StunMethod.Refresh, (tx) => [attr(TurnAttr.LIFETIME, 600, tx)], { retryStale: false }))).toBe(438);
  });

  it('rejects a request on an allocation by another username with 441', () => {
    const { client } = setup();
    client.allocate();
    client.username = 'other';
    client.password = 'secret';
    expect(code(client.request(StunMethod.Refresh, () => []))).toBe(ErrorCode.WrongCredentials);
  });
});

describe('TURN server: Allocate checks (RFC 8656 §7.2)', () => {
  it('answers a retransmitted Allocate with the same relayed address, another transaction with 437', () => {
    const { client } = setup();
    client.allocate();
    const build = (t: Uint8Array) => [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, t)];
    // A fresh allocation from another port (after a 438: nonces are per source), then its retransmission.
    const from = { address: client.local.address, port: 40001 };
    const first = client.request(StunMethod.Allocate, build, { from });
    const again = client.request(StunMethod.Allocate, build, { tx: first.transactionId.slice(), from });
    expect(first.cls).toBe('success');
    expect(again.cls).toBe('success');
    expect(getAttribute(again, TurnAttr.XOR_RELAYED_ADDRESS)).toEqual(getAttribute(first, TurnAttr.XOR_RELAYED_ADDRESS));
    expect(code(client.request(StunMethod.Allocate, build, { from }))).toBe(ErrorCode.AllocationMismatch);
  });

  it('checks REQUESTED-TRANSPORT (400, 442), treats DONT-FRAGMENT as unknown (420) and enforces the quota (486)', () => {
    const { client } = setup({ maxAllocationsPerUser: 1 });
    client.allocate();
    const from = (port: number) => ({ from: { address: client.local.address, port } });
    expect(code(client.request(StunMethod.Allocate, () => [], from(40002)))).toBe(400);
    expect(code(client.request(StunMethod.Allocate, (tx) => [attr(TurnAttr.REQUESTED_TRANSPORT, 6, tx)], from(40002)))).toBe(442);
    const df = client.request(StunMethod.Allocate, (tx) => [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, tx), attr(TurnAttr.DONT_FRAGMENT, true, tx)], from(40002));
    expect(code(df)).toBe(420);
    expect(getAttribute(df, Attr.UNKNOWN_ATTRIBUTES)).toEqual([TurnAttr.DONT_FRAGMENT.type]);
    expect(code(client.request(StunMethod.Allocate, (tx) => [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, tx)], from(40002)))).toBe(486);
  });

  it('honours EVEN-PORT with a reservation that a RESERVATION-TOKEN then claims', () => {
    const { client } = setup();
    const ok = client.allocate((tx) => [attr(TurnAttr.EVEN_PORT, { reserve: true }, tx)]);
    const relayed = getAttribute(ok, TurnAttr.XOR_RELAYED_ADDRESS)!;
    expect(relayed.port % 2).toBe(0);
    const token = getAttribute(ok, TurnAttr.RESERVATION_TOKEN)!;
    expect(token).toHaveLength(8);
    const second = client.request(
      StunMethod.Allocate,
      (tx) => [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, tx), attr(TurnAttr.RESERVATION_TOKEN, token, tx)],
      { from: { address: client.local.address, port: 40003 } },
    );
    expect(getAttribute(second, TurnAttr.XOR_RELAYED_ADDRESS)).toEqual({ address: relayed.address, port: relayed.port + 1 });
  });

  it('makes a dual allocation when it has an IPv6 relay address, else reports ADDRESS-ERROR-CODE 440', () => {
    const dual = setup({ relayAddress: '2001:db8::10' });
    const ok = dual.client.allocate((tx) => [attr(TurnAttr.ADDITIONAL_ADDRESS_FAMILY, 'ipv6', tx)]);
    const relays = ok.attributes.filter((a) => a.type === TurnAttr.XOR_RELAYED_ADDRESS.type).map((a) => TurnAttr.XOR_RELAYED_ADDRESS.decode(a.value, ok.transactionId));
    expect(relays.map((r) => r!.address)).toEqual(['198.51.100.10', '2001:db8::10']);
    const single = setup();
    const partial = single.client.allocate((tx) => [attr(TurnAttr.ADDITIONAL_ADDRESS_FAMILY, 'ipv6', tx)]);
    expect(partial.cls).toBe('success');
    expect(getAttribute(partial, TurnAttr.ADDRESS_ERROR_CODE)).toMatchObject({ family: 'ipv6', code: 440 });
    expect(code(single.client.request(StunMethod.Allocate, (tx) => [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, tx), attr(TurnAttr.REQUESTED_ADDRESS_FAMILY, 'ipv6', tx)], { from: { address: single.client.local.address, port: 40009 } }))).toBe(440);
  });
});

describe('TURN server: lifetimes and channel rules', () => {
  it('expires an allocation at its lifetime (virtual time) and emits an event', () => {
    const { client, turn, net, peer, P } = setup({ defaultLifetimeSec: 60, maxLifetimeSec: 60 });
    const ok = client.allocate();
    const t0 = net.now;
    expect(getAttribute(ok, TurnAttr.LIFETIME)).toBe(60);
    const relayed = getAttribute(ok, TurnAttr.XOR_RELAYED_ADDRESS)!;
    const events: TurnServerEvent[] = turn.attachment.events as TurnServerEvent[];
    net.runUntilTrue(() => events.some((e) => e.type === 'allocation-deleted'), 120_000);
    expect(events.at(-1)).toMatchObject({ type: 'allocation-deleted', reason: 'expired' });
    // The allocation was created when the request arrived (one NAT hop earlier than t0).
    expect(net.now).toBeGreaterThan(t0 + 59_000);
    expect(net.now).toBeLessThanOrEqual(t0 + 60_000);
    peer.send(P, relayed, bytes('late'));
    net.settle();
    expect(net.stats.dropped.unclaimed).toBe(1);
  });

  it('drops peer data once a permission is 300 s old, refreshed only by CreatePermission/ChannelBind', () => {
    const { client, turn, net, peer, P } = setup();
    const relayed = getAttribute(client.allocate((tx) => [attr(TurnAttr.LIFETIME, 3600, tx)]), TurnAttr.XOR_RELAYED_ADDRESS)!;
    client.request(StunMethod.CreatePermission, (tx) => [attr(TurnAttr.XOR_PEER_ADDRESS, P, tx)]);
    net.runFor(299_000);
    peer.send(P, relayed, bytes('in time'));
    net.settle();
    expect(client.takeFromServer()).toHaveLength(1);
    net.runFor(2_000);
    peer.send(P, relayed, bytes('too late'));
    net.settle();
    expect(client.takeFromServer()).toHaveLength(0);
    expect(turn.server.stats.dropped['no-permission']).toBe(1);
  });

  it('discards a Send indication to a peer without permission (RFC 8656 §11.2)', () => {
    const { client, turn, peer, P } = setup();
    client.allocate();
    client.indication(StunMethod.Send, (tx) => [attr(TurnAttr.XOR_PEER_ADDRESS, P, tx), attr(TurnAttr.DATA, bytes('no permission'), tx)]);
    expect(peer.received).toHaveLength(0);
    expect(turn.server.stats.dropped['no-permission']).toBe(1);
    // Missing DATA: discarded as a bad indication.
    client.request(StunMethod.CreatePermission, (tx) => [attr(TurnAttr.XOR_PEER_ADDRESS, P, tx)]);
    client.indication(StunMethod.Send, (tx) => [attr(TurnAttr.XOR_PEER_ADDRESS, P, tx)]);
    expect(peer.received).toHaveLength(0);
    expect(turn.server.stats.dropped['bad-indication']).toBe(1);
  });

  it('discards ChannelData on an unbound or expired channel (RFC 8656 §12.6)', () => {
    // The NAT keeps the idle mapping for an hour so that the 5-tuple survives the wait.
    const { client, turn, net, peer, P } = setup({}, 'turn', { mappingTimeoutMs: 3_600_000 });
    client.allocate((tx) => [attr(TurnAttr.LIFETIME, 3600, tx)]);
    const send = (channel: number): void => {
      client.endpoint.send(client.local, client.server, encodeChannelData(channel, bytes('cd')));
      net.settle();
    };
    send(0x4005);
    expect(turn.server.stats.dropped['no-channel']).toBe(1);
    client.request(StunMethod.ChannelBind, (tx) => [attr(TurnAttr.CHANNEL_NUMBER, 0x4005, tx), attr(TurnAttr.XOR_PEER_ADDRESS, P, tx)]);
    net.runFor(599_000);
    send(0x4005);
    expect(peer.received).toHaveLength(1);
    net.runFor(2_000);
    send(0x4005);
    expect(peer.received).toHaveLength(1);
    expect(turn.server.stats.dropped['no-channel']).toBe(2);
  });

  it('rejects channel numbers out of range and conflicting bindings with 400', () => {
    const { client, P } = setup();
    client.allocate();
    const bind = (channel: number, peer: TransportAddress) =>
      code(client.request(StunMethod.ChannelBind, (tx) => [attr(TurnAttr.CHANNEL_NUMBER, channel, tx), attr(TurnAttr.XOR_PEER_ADDRESS, peer, tx)]));
    expect(bind(0x3fff, P)).toBe(400);
    expect(bind(0x5000, P)).toBe(400);
    expect(bind(0x4000, P)).toBeUndefined();
    expect(bind(0x4000, P)).toBeUndefined(); // refresh of the same binding
    expect(bind(0x4000, { address: P.address, port: P.port + 1 })).toBe(400);
    expect(bind(0x4002, P)).toBe(400);
    expect(bind(0x4001, { address: '2001:db8::1', port: 1 })).toBe(443);
  });

  it('answers Binding requests on its listening address', () => {
    const { client } = setup();
    const r = client.request(StunMethod.Binding, () => [], { auth: false });
    expect(r.cls).toBe('success');
    expect(getAttribute(r, Attr.XOR_MAPPED_ADDRESS)?.address).toBe('203.0.113.20');
  });
});
