/**
 * The `a=candidate` grammar of RFC 8839 §5.1 (with the `tcptype` extension of RFC 6544 §4.5 and the mDNS `.local`
 * addresses of draft-ietf-mmusic-mdns-ice-candidates). Parsing accepts what real stacks send and keeps enough of the
 * original spelling (transport case, extension order, position of `raddr`/`rport`/`tcptype`) that formatting a
 * parsed line gives it back unchanged.
 *
 * Layout rules kept for the identity:
 * - `typ <type>` is followed by name/value pairs. `raddr`, `rport` and `tcptype` are typed fields of the record.
 *   When they appear in the canonical order (`raddr` `rport` `tcptype`, before any other pair) only the typed field
 *   is set. When one appears after another pair (e.g. pion writes `tcptype` before `raddr`), the pair is also kept
 *   in `extensions` at its position; the formatter then writes the typed field's value at that position.
 * - Transport is normalised to lower case in `transport`; a different original spelling (`UDP`) is kept in
 *   `transportText`.
 * - Addresses are kept verbatim (no IPv6 canonicalisation), numbers are written without leading zeros.
 * @module
 */
import { ipFamily } from '../ip.js';
import { arg, is } from '../arguments.js';
import { CandidateParseError } from '../errors.js';
import { parseIp } from '../ip.js';
import type { Candidate, CandidateType, TcpType } from './candidate.js';

/** Highest candidate priority (RFC 8839 §5.1: 1..2^31-1). */
export const MAX_CANDIDATE_PRIORITY = 0x7fffffff;

const ICE_CHARS = /^[A-Za-z0-9+/]{1,32}$/;
// RFC 3261 token: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"
const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
// RFC 5234 VCHAR: %x21-7E.
const VCHARS = /^[\x21-\x7e]*$/;
const DIGITS = /^[0-9]+$/;
const HOST_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const UUID_V4_LOCAL = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.local$/i;
const CANDIDATE_TYPES: readonly CandidateType[] = ['host', 'srflx', 'prflx', 'relay'];
const TCP_TYPES: readonly TcpType[] = ['active', 'passive', 'so'];

/** How `formatCandidate` prefixes its output. */
export interface FormatCandidateOptions {
  /** Write the SDP attribute form `a=candidate:...` instead of `candidate:...` (default false). */
  readonly sdpAttribute?: boolean;
}

/**
 * True for an mDNS candidate address: per draft-ietf-mmusic-mdns-ice-candidates §3.2.1 step 1, a name that ends in
 * `.local` and contains no other `.`.
 */
export function isMdnsName(address: string): boolean {
  const lower = address.toLowerCase();
  return lower.endsWith('.local') && lower.indexOf('.') === lower.length - 6 && lower.length > 6;
}

/** True for a name in the exact form the draft's §3.1.1 step 3 mandates: a version 4 UUID followed by `.local`. */
export function isUuidMdnsName(address: string): boolean {
  return UUID_V4_LOCAL.test(address);
}

/** What a candidate's connection-address is: an IP literal of either family, an mDNS name, or another FQDN. */
export type CandidateAddressKind = 'ipv4' | 'ipv6' | 'mdns' | 'fqdn';

/**
 * Classifies a connection-address. RFC 8839 §5.1: an agent MUST ignore remote candidates with FQDNs other than
 * those an extension (mDNS) defines; callers use this to decide.
 */
export function candidateAddressKind(address: string): CandidateAddressKind {
  if (address.includes(':')) return 'ipv6';
  if (parseIp(address) !== undefined) return 'ipv4';
  return isMdnsName(address) ? 'mdns' : 'fqdn';
}

function isConnectionAddress(text: string): boolean {
  // RFC 8839 §5.1: a colon means IPv6.
  if (text.includes(':')) return parseIp(text) !== undefined;
  if (parseIp(text) !== undefined) return true;
  // Dotted-quad-looking text that is not a valid IPv4 literal is not a host name either.
  if (/^[0-9.]+$/.test(text)) return false;
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((l) => HOST_LABEL.test(l));
}

function parseNumber(text: string | undefined, field: string, maxDigits: number, min: number, max: number): number {
  if (text === undefined) throw new CandidateParseError(field, 'missing');
  if (!DIGITS.test(text) || text.length > maxDigits) throw new CandidateParseError(field, `"${text}" is not 1*${maxDigits}DIGIT`);
  const n = Number(text);
  if (n < min || n > max) throw new CandidateParseError(field, `${n} is outside ${min}..${max}`);
  return n;
}

function parsePort(text: string | undefined, field: string): number {
  return parseNumber(text, field, 5, 0, 65535);
}

function parseAddress(text: string | undefined, field: string): string {
  if (text === undefined) throw new CandidateParseError(field, 'missing');
  if (!isConnectionAddress(text)) throw new CandidateParseError(field, `"${text}" is not an IP address or host name`);
  return text;
}

/** Strips `a=` and `candidate:` (each optional) and a trailing CRLF. */
function body(line: string): string {
  let s = line.replace(/\r?\n$/, '');
  if (s.startsWith('a=')) s = s.slice(2);
  if (s.slice(0, 10).toLowerCase() === 'candidate:') s = s.slice(10);
  return s.trim();
}

/**
 * Parses one candidate line: `a=candidate:...`, `candidate:...` or the bare attribute value. Throws
 * `CandidateParseError` whose `field` is one of foundation, component, transport, priority, address, port, type,
 * raddr, rport, tcptype, extension.
 */
export function parseCandidate(line: string): Candidate {
  // Remote input may be anything: a typed parse error (so tryParseCandidate reports it), never a TypeError.
  if (typeof line !== 'string') throw new CandidateParseError('candidate', 'not a string');
  const tokens = body(line).split(/[ \t]+/);
  const foundation = tokens[0];
  if (foundation === undefined || !ICE_CHARS.test(foundation)) {
    throw new CandidateParseError('foundation', `"${foundation ?? ''}" is not 1*32ice-char`);
  }
  // RFC 8839 §5.1: component-id is 1*3DIGIT and between 1 and 256.
  const component = parseNumber(tokens[1], 'component', 3, 1, 256);
  const transportText = tokens[2];
  if (transportText === undefined) throw new CandidateParseError('transport', 'missing');
  const lowerTransport = transportText.toLowerCase();
  if (lowerTransport !== 'udp' && lowerTransport !== 'tcp') {
    throw new CandidateParseError('transport', `"${transportText}" is not a supported transport (udp, tcp)`);
  }
  const priority = parseNumber(tokens[3], 'priority', 10, 1, MAX_CANDIDATE_PRIORITY);
  const address = parseAddress(tokens[4], 'address');
  const port = parsePort(tokens[5], 'port');
  if (tokens[6] !== 'typ') throw new CandidateParseError('type', tokens[6] === undefined ? 'missing "typ"' : `expected "typ", got "${tokens[6]}"`);
  const typeText = tokens[7];
  if (typeText === undefined) throw new CandidateParseError('type', 'missing');
  if (!(CANDIDATE_TYPES as readonly string[]).includes(typeText)) {
    throw new CandidateParseError('type', `"${typeText}" is not host, srflx, prflx or relay`);
  }
  const rest = tokens.slice(8);
  if (rest.length % 2 !== 0) throw new CandidateParseError('extension', `"${rest[rest.length - 1]}" has no value`);

  let relatedAddress: string | undefined;
  let relatedPort: number | undefined;
  let tcpType: TcpType | undefined;
  const extensions: (readonly [string, string])[] = [];
  // Canonical order: raddr, rport, tcptype, then the rest. `stage` is how far along that order we are.
  let stage = 0;
  for (let i = 0; i < rest.length; i += 2) {
    const name = rest[i]!;
    const value = rest[i + 1]!;
    const known = name === 'raddr' ? 1 : name === 'rport' ? 2 : name === 'tcptype' ? 3 : 0;
    if (known === 0) {
      if (!TOKEN.test(name)) throw new CandidateParseError('extension', `"${name}" is not a token`);
      if (!VCHARS.test(value)) throw new CandidateParseError('extension', `value of "${name}" is not VCHARs`);
      extensions.push([name, value]);
      stage = 4;
      continue;
    }
    if (known === 1) {
      if (relatedAddress !== undefined) throw new CandidateParseError('raddr', 'given twice');
      relatedAddress = parseAddress(value, 'raddr');
    } else if (known === 2) {
      if (relatedPort !== undefined) throw new CandidateParseError('rport', 'given twice');
      relatedPort = parsePort(value, 'rport');
    } else {
      if (tcpType !== undefined) throw new CandidateParseError('tcptype', 'given twice');
      if (!(TCP_TYPES as readonly string[]).includes(value)) {
        throw new CandidateParseError('tcptype', `"${value}" is not active, passive or so`);
      }
      tcpType = value as TcpType;
    }
    if (known > stage) {
      stage = known;
    } else {
      // Out of canonical position: remember where it stood, and so for every later one.
      extensions.push([name, value]);
      stage = 4;
    }
  }

  return {
    foundation,
    component,
    transport: lowerTransport,
    ...(transportText !== lowerTransport ? { transportText } : {}),
    priority,
    address,
    port,
    type: typeText as CandidateType,
    ...(relatedAddress !== undefined ? { relatedAddress } : {}),
    ...(relatedPort !== undefined ? { relatedPort } : {}),
    ...(tcpType !== undefined ? { tcpType } : {}),
    ...(extensions.length > 0 ? { extensions } : {}),
  };
}

/** Result of `tryParseCandidate`. */
export type CandidateParseResult =
  | { readonly ok: true; readonly candidate: Candidate }
  | { readonly ok: false; readonly error: CandidateParseError };

/** `parseCandidate` without throwing (for remote input). */
export function tryParseCandidate(line: string): CandidateParseResult {
  try {
    return { ok: true, candidate: parseCandidate(line) };
  } catch (e) {
    if (e instanceof CandidateParseError) return { ok: false, error: e };
    throw e;
  }
}

/**
 * Checks a record against the grammar (the same rules `parseCandidate` applies). Throws `CandidateParseError`
 * naming the field.
 */
export function validateCandidate(c: Candidate): void {
  // A record may come from JSON signalling: check the shape first, so nothing below can throw anything but this.
  if (typeof c !== 'object' || c === null) throw new CandidateParseError('candidate', 'not a candidate record');
  const r = c as unknown as Record<string, unknown>;
  for (const [field, type] of REQUIRED_FIELDS) if (typeof r[field] !== type) throw new CandidateParseError(field, `missing or not a ${type}`);
  for (const [field, type] of OPTIONAL_FIELDS) if (r[field] !== undefined && typeof r[field] !== type) throw new CandidateParseError(field, `not a ${type}`);
  const ext = r['extensions'];
  if (ext !== undefined && (!Array.isArray(ext) || !ext.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'string'))) {
    throw new CandidateParseError('extension', 'not a list of [name, value] strings');
  }
  if (!ICE_CHARS.test(c.foundation)) throw new CandidateParseError('foundation', `"${c.foundation}" is not 1*32ice-char`);
  const int = (n: number, field: string, min: number, max: number) => {
    if (!Number.isInteger(n) || n < min || n > max) throw new CandidateParseError(field, `${n} is outside ${min}..${max}`);
  };
  int(c.component, 'component', 1, 256);
  if (c.transport !== 'udp' && c.transport !== 'tcp') throw new CandidateParseError('transport', `"${String(c.transport)}"`);
  if (c.transportText !== undefined && (c.transportText.toLowerCase() !== c.transport || !TOKEN.test(c.transportText))) {
    throw new CandidateParseError('transport', `transportText "${c.transportText}" does not name ${c.transport}`);
  }
  int(c.priority, 'priority', 1, MAX_CANDIDATE_PRIORITY);
  parseAddress(c.address, 'address');
  int(c.port, 'port', 0, 65535);
  if (!CANDIDATE_TYPES.includes(c.type)) throw new CandidateParseError('type', `"${String(c.type)}"`);
  if (c.relatedAddress !== undefined) parseAddress(c.relatedAddress, 'raddr');
  if (c.relatedPort !== undefined) int(c.relatedPort, 'rport', 0, 65535);
  if (c.tcpType !== undefined && !TCP_TYPES.includes(c.tcpType)) throw new CandidateParseError('tcptype', `"${String(c.tcpType)}"`);
  for (const [name, value] of c.extensions ?? []) {
    if (!TOKEN.test(name)) throw new CandidateParseError('extension', `"${name}" is not a token`);
    if (value === '' || !VCHARS.test(value)) throw new CandidateParseError('extension', `value of "${name}" must be 1*VCHAR`);
  }
}

const REQUIRED_FIELDS = [
  ['foundation', 'string'],
  ['component', 'number'],
  ['transport', 'string'],
  ['priority', 'number'],
  ['address', 'string'],
  ['port', 'number'],
  ['type', 'string'],
] as const;
const OPTIONAL_FIELDS = [
  ['transportText', 'string'],
  ['relatedAddress', 'string'],
  ['relatedPort', 'number'],
  ['tcpType', 'string'],
] as const;

/**
 * Why a well-formed remote candidate can never be a peer, or undefined: the unspecified address, the IPv4
 * broadcast address, a multicast address (checks would reach local services or a multicast group), or UDP port 0.
 */
export function unusableRemoteAddress(c: Candidate): string | undefined {
  const a = c.address.toLowerCase();
  if (a === '0.0.0.0' || a === '::') return 'unspecified-address';
  if (a === '255.255.255.255') return 'broadcast-address';
  const first = Number(a.split('.', 1)[0]);
  if ((ipFamily(a) === 4 && first >= 224 && first <= 239) || (ipFamily(a) === 6 && a.startsWith('ff'))) return 'multicast-address';
  if (c.transport === 'udp' && c.port === 0) return 'port-zero';
  return undefined;
}

/**
 * Formats a candidate as `candidate:<foundation> <component> ...` (or `a=candidate:...` with `sdpAttribute`).
 * Validates first and throws `CandidateParseError` for a record the grammar cannot carry.
 */
export function formatCandidate(c: Candidate, options: FormatCandidateOptions = {}): string {
  arg(options, 'options', is.record({ sdpAttribute: is.optional(is.boolean) }));
  validateCandidate(c);
  const transport = c.transportText ?? c.transport;
  const parts: (string | number)[] = [c.foundation, c.component, transport, c.priority, c.address, c.port, 'typ', c.type];
  const ext = c.extensions ?? [];
  const inExt = (n: string) => ext.some(([name]) => name === n);
  if (c.relatedAddress !== undefined && !inExt('raddr')) parts.push('raddr', c.relatedAddress);
  if (c.relatedPort !== undefined && !inExt('rport')) parts.push('rport', c.relatedPort);
  if (c.tcpType !== undefined && !inExt('tcptype')) parts.push('tcptype', c.tcpType);
  for (const [name, value] of ext) {
    // A typed field kept at its original position: the typed value wins (the record may have been updated).
    if (name === 'raddr') {
      if (c.relatedAddress !== undefined) parts.push(name, c.relatedAddress);
    } else if (name === 'rport') {
      if (c.relatedPort !== undefined) parts.push(name, c.relatedPort);
    } else if (name === 'tcptype') {
      if (c.tcpType !== undefined) parts.push(name, c.tcpType);
    } else {
      parts.push(name, value);
    }
  }
  return `${options.sdpAttribute ? 'a=' : ''}candidate:${parts.join(' ')}`;
}

/** The value of the first extension attribute named `name` (e.g. `'generation'`, `'ufrag'`), or undefined. */
export function candidateExtension(c: Candidate, name: string): string | undefined {
  validateCandidate(c);
  arg(name, 'name', is.string);
  for (const [n, v] of c.extensions ?? []) if (n === name) return v;
  return undefined;
}
