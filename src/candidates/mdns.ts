/**
 * mDNS for ICE candidates (draft-ietf-mmusic-mdns-ice-candidates, over RFC 6762) as a sans-IO machine.
 *
 * The responder hides host addresses behind random `<uuid-v4>.local` names: it registers them (announcing each
 * twice, one second apart, RFC 6762 §8.3; probing is skipped as the draft §3.1.1 step 4 allows), answers queries
 * for its own names, and resolves remote `.local` names with a bounded number of queries.
 *
 * The first announcement waits `announceDelayMs` (default 3 s; the draft §3.1.2.1 lets it be delayed). Nobody can
 * know a random name before our peer reads it in our description, and that peer then asks at once, often with a QM
 * question (Chromium asks once, QM, and gives up after 3 s). RFC 6762 §6 forbids multicasting the record again within
 * a second, so an announcement just before that query would hold the answer back for up to a second. Waiting lets
 * the query be answered at once; that multicast answer counts as the first announcement. It never opens a socket:
 * every datagram it emits has `local` set to the mDNS socket address given in the options and `remote` set to the
 * multicast group (or to a querier, for unicast responses). `src/node/mdns-socket.ts` is its Node binding.
 *
 * Queries carry one question each (A or AAAA, only for the families the caller can use): browsers' responders
 * (Chromium's among them) answer single-question queries only. An unanswered name is asked again 1 s later, then at
 * doubling intervals (RFC 6762 §5.2), until the resolve deadline. A query for our record that falls within a second
 * of its last multicast is answered once the second has passed (§6 limits the rate, it does not ask for silence).
 *
 * Kept simple on purpose (what ICE needs, not a general mDNS stack): no probing or conflict resolution, no
 * continuous querying after a name resolved, no response delays or aggregation (RFC 6762 §6 allows answering a
 * question about a unique record at once), known-answer suppression (§7.1) only for our own records.
 * @module
 */
import dnsPacket from 'dns-packet';
import { canonicalIp, ipFamily } from '../ip.js';
import type { SansIoMachine } from '../machine.js';
import type { Datagram, RandomSource, TransportAddress } from '../types.js';
import { isUuidMdnsName } from './grammar.js';

/** The mDNS IPv4 group and port (RFC 6762 §3). */
export const MDNS_IPV4_GROUP: TransportAddress = Object.freeze({ address: '224.0.0.251', port: 5353 });
/** The mDNS IPv6 group and port (RFC 6762 §3). */
export const MDNS_IPV6_GROUP: TransportAddress = Object.freeze({ address: 'ff02::fb', port: 5353 });

/** RFC 6762 §10: records with a host name as owner name use 120 s. */
export const DEFAULT_MDNS_TTL_SECONDS = 120;
/** RFC 6762 §6.7: legacy unicast responses carry a TTL of at most 10 s. */
const LEGACY_TTL_SECONDS = 10;
const MAX_CACHE = 256;
/**
 * Concurrent resolutions. Names come from the peer's signalling (hostile input): without a bound, a description with
 * thousands of `.local` candidates would make us multicast thousands of queries on the link.
 */
export const MAX_PENDING_RESOLUTIONS = 128;
/** RFC 6762 §6: a record is multicast at most once per second on an interface (probe answers excepted). */
const MULTICAST_INTERVAL_MS = 1000;
/** dns-packet 5 decodes a question class with the unicast-response bit as the string `UNKNOWN_<n>`. */
const IN_QU = 'UNKNOWN_32769';
const ANY_QU = 'UNKNOWN_33023';
/** Default delay of the first announcement after registration (see the module comment). */
export const DEFAULT_MDNS_ANNOUNCE_DELAY_MS = 3000;
/** Default resolve deadline: queries at 0, 1, 3 and 7 s, the last one given a second to be answered. */
export const DEFAULT_MDNS_RESOLVE_TIMEOUT_MS = 8000;

/** An address family a resolution asks for: 4 queries A records, 6 AAAA records. */
export type MdnsFamily = 4 | 6;

/** Options of {@link MdnsResponder}. */
export interface MdnsResponderOptions {
  readonly random: RandomSource;
  /** Address of the mDNS socket; the `local` of every datagram emitted. */
  readonly local: TransportAddress;
  /** Multicast group and port (default 224.0.0.251:5353; tests use a private port). */
  readonly group?: TransportAddress;
  /** TTL of our A/AAAA records (default 120 s). */
  readonly ttlSeconds?: number;
  /** Give up resolving a name after this long (default {@link DEFAULT_MDNS_RESOLVE_TIMEOUT_MS}); then `unresolved` is reported. */
  readonly resolveTimeoutMs?: number;
  /**
   * First retransmission interval (default 1000 ms: RFC 6762 §5.2 asks at least one second between the first two
   * queries), doubling after each send.
   */
  readonly queryIntervalMs?: number;
  /** Retransmissions of an unanswered query (default: as many as fit before the resolve deadline). */
  readonly queryRetransmits?: number;
  /** Families asked for when `resolve` names none (default both: an A query and a separate AAAA query). */
  readonly queryFamilies?: readonly MdnsFamily[];
  /**
   * Set the unicast-response ("QU") bit in the first query for a name (default true, draft §3.2.1 step 3;
   * retransmissions are QM, RFC 6762 §5.4). A querier that shares the mDNS port with other stacks on the same host
   * should turn it off (RFC 6762 §15.1).
   */
  readonly requestUnicastResponse?: boolean;
  /**
   * Answer QU questions by unicast to the querier's address and port (default true, RFC 6762 §5.4), unless the record
   * was not multicast within a quarter of its TTL (then it is multicast, as §5.4 says); false multicasts every answer.
   */
  readonly unicastResponses?: boolean;
  /** Announcements per registration (default 2, RFC 6762 §8.3), `announceIntervalMs` apart (default 1000 ms). */
  readonly announcements?: number;
  readonly announceIntervalMs?: number;
  /**
   * Delay of the first announcement after registration (default {@link DEFAULT_MDNS_ANNOUNCE_DELAY_MS}), so that the
   * peer's first query is answered at once rather than a second later. A multicast answer sent before counts as the
   * first announcement.
   */
  readonly announceDelayMs?: number;
  /**
   * Only resolve names in the draft's `<uuid-v4>.local` form (default true, draft §3.2.2: agents SHOULD NOT resolve
   * other names).
   */
  readonly strictNames?: boolean;
}

/** What the responder reports. */
export type MdnsEvent =
  | { readonly type: 'resolved'; readonly name: string; readonly address: string }
  | {
      readonly type: 'unresolved';
      readonly name: string;
      /**
       * `'timeout'`, `'invalid-name'` (not `<uuid>.local`), `'ambiguous'` (draft §3.2.2: several addresses), or
       * `'limit'` (already {@link MAX_PENDING_RESOLUTIONS} names resolving).
       */
      readonly reason: 'timeout' | 'invalid-name' | 'ambiguous' | 'limit';
    };

/** Counters. */
export interface MdnsStats {
  readonly queriesSent: number;
  readonly responsesSent: number;
  /** Datagrams that were not DNS messages. */
  readonly malformed: number;
  /**
   * Multicast answers held back because the record went out less than a second before (RFC 6762 §6); each is sent
   * once the second has passed, unless an announcement carried the record meanwhile.
   */
  readonly rateLimited: number;
}

interface Pending {
  readonly name: string;
  readonly deadline: number;
  /** The families asked for; a later `resolve` of the same name may add one. */
  readonly families: Set<MdnsFamily>;
  nextSend: number;
  interval: number;
  retransmitsLeft: number;
  /** Whether the next send is the first (the only one with the QU bit, RFC 6762 §5.4). */
  first: boolean;
}

interface Registration {
  readonly name: string;
  readonly address: string;
  announcementsLeft: number;
  nextAnnounce: number;
  /** When the record was last multicast (RFC 6762 §6 rate limit). */
  lastMulticast: number;
  /** When a query asked for a multicast answer that the rate limit held back; undefined when none waits. */
  deferredSince: number | undefined;
}

/** Formats 16 random bytes as a version 4 UUID (RFC 4122 §4.4). */
export function uuidV4(random: RandomSource): string {
  const b = random.bytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The mDNS responder and resolver machine. */
export class MdnsResponder implements SansIoMachine<MdnsEvent> {
  readonly #random: RandomSource;
  readonly #local: TransportAddress;
  readonly #group: TransportAddress;
  readonly #ttl: number;
  readonly #resolveTimeout: number;
  readonly #queryInterval: number;
  readonly #retransmits: number;
  readonly #families: readonly MdnsFamily[];
  readonly #requestQu: boolean;
  readonly #unicastResponses: boolean;
  readonly #announcements: number;
  readonly #announceInterval: number;
  readonly #announceDelay: number;
  readonly #strict: boolean;
  /** By lower-case name. */
  readonly #byName = new Map<string, Registration>();
  /** By canonical address. */
  readonly #byAddress = new Map<string, Registration>();
  readonly #pending = new Map<string, Pending>();
  /** Resolved remote names (lower case) with their expiry. */
  readonly #cache = new Map<string, { address: string; expires: number }>();
  readonly #transmits: Datagram[] = [];
  readonly #events: MdnsEvent[] = [];
  #queriesSent = 0;
  #responsesSent = 0;
  #malformed = 0;
  #rateLimited = 0;
  #closed = false;

  constructor(options: MdnsResponderOptions) {
    this.#random = options.random;
    this.#local = options.local;
    this.#group = options.group ?? MDNS_IPV4_GROUP;
    this.#ttl = options.ttlSeconds ?? DEFAULT_MDNS_TTL_SECONDS;
    this.#resolveTimeout = options.resolveTimeoutMs ?? DEFAULT_MDNS_RESOLVE_TIMEOUT_MS;
    this.#queryInterval = options.queryIntervalMs ?? 1000;
    this.#retransmits = options.queryRetransmits ?? Infinity;
    this.#families = options.queryFamilies !== undefined && options.queryFamilies.length > 0 ? [...new Set(options.queryFamilies)] : [4, 6];
    this.#requestQu = options.requestUnicastResponse ?? true;
    this.#unicastResponses = options.unicastResponses ?? true;
    this.#announcements = options.announcements ?? 2;
    this.#announceInterval = options.announceIntervalMs ?? 1000;
    this.#announceDelay = options.announceDelayMs ?? DEFAULT_MDNS_ANNOUNCE_DELAY_MS;
    this.#strict = options.strictNames ?? true;
  }

  get stats(): MdnsStats {
    return { queriesSent: this.#queriesSent, responsesSent: this.#responsesSent, malformed: this.#malformed, rateLimited: this.#rateLimited };
  }

  /** Our registered names and their addresses. */
  get registrations(): ReadonlyMap<string, string> {
    return new Map([...this.#byName.values()].map((r) => [r.name, r.address]));
  }

  /**
   * The `<uuid>.local` name for a host address, registering and announcing it on first use (draft §3.1.1 steps
   * 2-5: one name per address, reused). @throws RangeError when `address` is not an IP literal.
   */
  register(now: number, address: string): string {
    if (ipFamily(address) === 0) throw new RangeError(`not an IP address: ${address}`);
    const ip = canonicalIp(address);
    const existing = this.#byAddress.get(ip);
    if (existing !== undefined) return existing.name;
    const name = `${uuidV4(this.#random)}.local`;
    const r: Registration = {
      name,
      address: ip,
      announcementsLeft: this.#announcements,
      nextAnnounce: now + this.#announceDelay,
      lastMulticast: -Infinity,
      deferredSince: undefined,
    };
    this.#byName.set(name.toLowerCase(), r);
    this.#byAddress.set(ip, r);
    this.handleTimeout(now);
    return name;
  }

  /** The cached address of a remote name (or our own name's address), without querying. */
  lookup(now: number, name: string): string | undefined {
    const key = name.toLowerCase();
    const own = this.#byName.get(key);
    if (own !== undefined) return own.address;
    const c = this.#cache.get(key);
    return c !== undefined && c.expires > now ? c.address : undefined;
  }

  /** Withdraws a name with a goodbye (TTL 0, RFC 6762 §10.1). Returns whether it was ours. */
  unregister(_now: number, name: string): boolean {
    const r = this.#byName.get(name.toLowerCase());
    if (r === undefined) return false;
    this.#byName.delete(name.toLowerCase());
    this.#byAddress.delete(r.address);
    if (!this.#closed) this.#multicast(this.#response([r], 0, false));
    return true;
  }

  /**
   * Starts resolving a remote `.local` name; the outcome comes as a `resolved` or `unresolved` event. Our own
   * names and cached ones resolve at once. `families` are the address families the caller can use (default the
   * `queryFamilies` option): one query per family, each with a single question.
   */
  resolve(now: number, name: string, families?: readonly MdnsFamily[]): void {
    const key = name.toLowerCase();
    const own = this.#byName.get(key);
    if (own !== undefined) {
      this.#events.push({ type: 'resolved', name, address: own.address });
      return;
    }
    if (this.#strict ? !isUuidMdnsName(name) : !key.endsWith('.local')) {
      this.#events.push({ type: 'unresolved', name, reason: 'invalid-name' });
      return;
    }
    const cached = this.#cache.get(key);
    if (cached !== undefined && cached.expires > now) {
      this.#events.push({ type: 'resolved', name, address: cached.address });
      return;
    }
    if (this.#closed) return;
    const asked = families !== undefined && families.length > 0 ? families.filter((f) => f === 4 || f === 6) : this.#families;
    const running = this.#pending.get(key);
    if (running !== undefined) {
      // Already asking: a family not asked yet joins from the next send on.
      for (const f of asked) running.families.add(f);
      return;
    }
    if (this.#pending.size >= MAX_PENDING_RESOLUTIONS) {
      this.#events.push({ type: 'unresolved', name, reason: 'limit' });
      return;
    }
    this.#pending.set(key, {
      name,
      deadline: now + this.#resolveTimeout,
      families: new Set(asked.length > 0 ? asked : this.#families),
      nextSend: now,
      interval: this.#queryInterval,
      retransmitsLeft: this.#retransmits,
      first: true,
    });
    this.handleTimeout(now);
  }

  /** Stops: pending resolutions are dropped without events, registrations say goodbye. */
  close(now: number): void {
    if (this.#closed) return;
    for (const r of [...this.#byName.values()]) this.unregister(now, r.name);
    this.#closed = true;
    this.#pending.clear();
  }

  handleReceive(now: number, datagram: Datagram): boolean {
    if (this.#closed) return false;
    let packet: dnsPacket.DecodedPacket;
    try {
      packet = dnsPacket.decode(Buffer.from(datagram.data.buffer, datagram.data.byteOffset, datagram.data.byteLength));
    } catch {
      this.#malformed++;
      return false;
    }
    if (packet.type === 'query') this.#answer(now, datagram, packet);
    else this.#learn(now, packet);
    return true;
  }

  handleTimeout(now: number): void {
    if (this.#closed) return;
    for (const r of this.#byName.values()) {
      if (r.announcementsLeft > 0 && now >= this.#announceAt(r)) {
        // RFC 6762 §8.3: unsolicited responses with the cache-flush bit, the answer our record.
        this.#multicast(this.#response([r], this.#ttl, true));
        this.#multicastDone(r, now);
      }
    }
    this.#sendDeferred(now);
    for (const [key, p] of this.#pending) {
      if (now >= p.deadline) {
        this.#pending.delete(key);
        this.#events.push({ type: 'unresolved', name: p.name, reason: 'timeout' });
        continue;
      }
      if (now >= p.nextSend) {
        for (const family of p.families) this.#sendQuery(p.name, family, p.first && this.#requestQu);
        p.first = false;
        if (p.retransmitsLeft > 0) {
          p.retransmitsLeft--;
          p.nextSend = now + p.interval;
          p.interval *= 2;
        } else {
          p.nextSend = Infinity;
        }
      }
    }
  }

  pollTransmit(): Datagram | undefined {
    return this.#transmits.shift();
  }

  pollEvent(): MdnsEvent | undefined {
    return this.#events.shift();
  }

  pollTimeout(): number | undefined {
    if (this.#closed) return undefined;
    let t = Infinity;
    for (const r of this.#byName.values()) {
      if (r.announcementsLeft > 0) t = Math.min(t, this.#announceAt(r));
      if (r.deferredSince !== undefined) t = Math.min(t, r.lastMulticast + MULTICAST_INTERVAL_MS);
    }
    for (const p of this.#pending.values()) t = Math.min(t, p.nextSend, p.deadline);
    return t === Infinity ? undefined : t;
  }

  // ---- internals ---------------------------------------------------------------------------------------------

  #multicast(data: Uint8Array): void {
    this.#responsesSent++;
    this.#transmits.push({ local: this.#local, remote: this.#group, data });
  }

  /** When the next announcement may go: its schedule, but never within a second of the last multicast (§6). */
  #announceAt(r: Registration): number {
    return Math.max(r.nextAnnounce, r.lastMulticast + MULTICAST_INTERVAL_MS);
  }

  /** Books a multicast of `r`: while announcements remain, any multicast of the record is one of them. */
  #multicastDone(r: Registration, now: number): void {
    r.lastMulticast = now;
    r.deferredSince = undefined;
    if (r.announcementsLeft > 0) {
      r.announcementsLeft--;
      r.nextAnnounce = now + this.#announceInterval;
    }
  }

  #record(r: Registration, ttl: number, flush: boolean): dnsPacket.Answer {
    return { type: ipFamily(r.address) === 6 ? 'AAAA' : 'A', name: r.name, ttl, class: 'IN', flush, data: r.address };
  }

  #response(records: readonly Registration[], ttl: number, flush: boolean, id = 0, questions?: dnsPacket.Question[]): Uint8Array {
    // RFC 6762 §18.1/§18.4: id 0 and the AA bit in multicast responses.
    return dnsPacket.encode({
      type: 'response',
      id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER,
      ...(questions !== undefined ? { questions } : {}),
      answers: records.map((r) => this.#record(r, ttl, flush)),
    });
  }

  #sendQuery(name: string, family: MdnsFamily, qu: boolean): void {
    // One question per message: Chromium's responder ignores queries with more than one question.
    const buf = dnsPacket.encode({ type: 'query', id: 0, questions: [{ type: family === 6 ? 'AAAA' : 'A', name, class: 'IN' }] });
    if (qu) setQuBit(buf);
    this.#queriesSent++;
    this.#transmits.push({ local: this.#local, remote: this.#group, data: buf });
  }

  #answer(now: number, from: Datagram, packet: dnsPacket.DecodedPacket): void {
    const matched: Registration[] = [];
    let qu = false;
    for (const q of packet.questions ?? []) {
      const r = this.#byName.get(q.name.toLowerCase());
      if (r === undefined) continue;
      const cls = q.class as string | undefined;
      if (cls !== 'IN' && cls !== IN_QU && cls !== 'ANY' && cls !== ANY_QU) continue;
      const family = ipFamily(r.address);
      if (!(q.type === 'A' && family === 4) && !(q.type === 'AAAA' && family === 6) && (q.type as string) !== 'ANY') continue;
      if (cls === IN_QU || cls === ANY_QU) qu = true;
      if (!matched.includes(r)) matched.push(r);
    }
    if (matched.length === 0) return;
    const legacy = from.remote.port !== this.#group.port;
    // RFC 6762 §7.1: known-answer suppression — skip records the querier already holds with at least half our TTL.
    const fresh = legacy
      ? matched
      : matched.filter(
          (r) =>
            !(packet.answers ?? []).some(
              (a) => (a.type === 'A' || a.type === 'AAAA') && a.name.toLowerCase() === r.name.toLowerCase() && a.data === r.address && (a.ttl ?? 0) >= this.#ttl / 2,
            ),
        );
    if (fresh.length === 0) return;
    if (legacy) {
      // RFC 6762 §6.7: a legacy querier gets a unicast reply echoing its id and question, TTL at most 10 s.
      const data = this.#response(fresh, Math.min(this.#ttl, LEGACY_TTL_SECONDS), false, packet.id ?? 0, packet.questions ?? []);
      this.#responsesSent++;
      this.#transmits.push({ local: this.#local, remote: from.remote, data });
    }
    // RFC 6762 §5.4: a QU question gets a unicast answer to the querier's address and port, unless the record was not
    // multicast within a quarter of its TTL: then it is multicast, to refresh every cache on the link.
    const quarterTtlMs = (this.#ttl * 1000) / 4;
    const unicast = qu && this.#unicastResponses ? fresh.filter((r) => now - r.lastMulticast < quarterTtlMs) : [];
    if (unicast.length > 0) {
      this.#responsesSent++;
      this.#transmits.push({ local: this.#local, remote: from.remote, data: this.#response(unicast, this.#ttl, true) });
    }
    const multicast = fresh.filter((r) => !unicast.includes(r));
    if (multicast.length === 0) return;
    // RFC 6762 §6: "MUST NOT ... multicast a record on a given interface until at least one second has elapsed since
    // the last time that record was multicast". A query inside that second is answered when it ends (a browser asks
    // once and never again); repeated queries meanwhile add nothing, so a query flood stays one answer a second.
    const due = multicast.filter((r) => now - r.lastMulticast >= MULTICAST_INTERVAL_MS);
    for (const r of multicast) {
      if (due.includes(r) || r.deferredSince !== undefined) continue;
      r.deferredSince = now;
      this.#rateLimited++;
    }
    if (due.length === 0) return;
    for (const r of due) this.#multicastDone(r, now);
    this.#multicast(this.#response(due, this.#ttl, true));
  }

  /** Multicasts the answers the rate limit held back, once their second has passed (RFC 6762 §6). */
  #sendDeferred(now: number): void {
    let due: Registration[] | undefined;
    for (const r of this.#byName.values()) {
      if (r.deferredSince === undefined) continue;
      if (r.lastMulticast > r.deferredSince) {
        // An announcement after the query already carried the record.
        r.deferredSince = undefined;
        continue;
      }
      if (now - r.lastMulticast < MULTICAST_INTERVAL_MS) continue;
      this.#multicastDone(r, now);
      (due ??= []).push(r);
    }
    if (due !== undefined) this.#multicast(this.#response(due, this.#ttl, true));
  }

  #learn(now: number, packet: dnsPacket.DecodedPacket): void {
    const found = new Map<string, Set<string>>();
    const ttlOf = new Map<string, number>();
    for (const a of [...(packet.answers ?? []), ...(packet.additionals ?? [])]) {
      if (a.type !== 'A' && a.type !== 'AAAA') continue;
      const key = a.name.toLowerCase();
      if (this.#byName.has(key)) continue; // our own records (looped back), or a conflicting claim we ignore
      const address = canonicalIp(a.data);
      if (ipFamily(address) === 0) continue;
      if ((a.ttl ?? 0) === 0) {
        // Goodbye (RFC 6762 §10.1).
        if (this.#cache.get(key)?.address === address) this.#cache.delete(key);
        continue;
      }
      let set = found.get(key);
      if (set === undefined) found.set(key, (set = new Set()));
      set.add(address);
      ttlOf.set(key, Math.min(ttlOf.get(key) ?? Infinity, a.ttl ?? this.#ttl));
    }
    for (const [key, addresses] of found) {
      const pending = this.#pending.get(key);
      if (addresses.size > 1) {
        // draft §3.2.2: ignore a name that resolves to more than one address.
        if (pending !== undefined) {
          this.#pending.delete(key);
          this.#events.push({ type: 'unresolved', name: pending.name, reason: 'ambiguous' });
        }
        continue;
      }
      const address = [...addresses][0]!;
      // Only names in the draft's form are cached (bounded), so chatty links cannot grow memory.
      if (isUuidMdnsName(key)) {
        this.#cache.delete(key);
        this.#cache.set(key, { address, expires: now + ttlOf.get(key)! * 1000 });
        if (this.#cache.size > MAX_CACHE) this.#cache.delete(this.#cache.keys().next().value!);
      }
      if (pending !== undefined) {
        this.#pending.delete(key);
        this.#events.push({ type: 'resolved', name: pending.name, address });
      }
    }
  }
}

/**
 * Sets the unicast-response bit (top bit of QCLASS, RFC 6762 §5.4) of a query encoded with one question and no
 * records, whose QCLASS is thus its last two bytes. dns-packet 5 cannot encode that bit (it maps any class name it
 * does not know to 0).
 */
function setQuBit(buf: Uint8Array): void {
  buf[buf.length - 2]! |= 0x80;
}
