/**
 * SDP as numbered lines: the one tokenizer the reader, the writer and the sdpfrag codec share, so that every
 * `SdpError` can name the 1-based line it is about, and so that a line the writer must recognise (a `c=`, a BUNDLE
 * group) is recognised by the same test the reader applies.
 * @module
 */
import { SdpError } from '../errors.js';

/** One SDP line with its position. */
export interface SdpLine {
  /** 1-based line number. */
  readonly number: number;
  readonly text: string;
  /** The type letter (`v`, `o`, `m`, `a`, ...). */
  readonly type: string;
  /** Everything after `x=`. */
  readonly value: string;
}

/** Splits SDP text into lines (CRLF, LF or CR), skipping empty ones; throws `SdpError` for a line that is not `x=...`. */
export function splitSdpLines(sdp: string): SdpLine[] {
  const out: SdpLine[] = [];
  const raw = sdp.split(/\r\n|\r|\n/);
  for (let i = 0; i < raw.length; i++) {
    const text = raw[i]!;
    if (text.trim() === '') continue;
    if (!/^[a-z]=/.test(text)) throw new SdpError(i + 1, text, 'not an SDP "<type>=<value>" line');
    out.push({ number: i + 1, text, type: text[0]!, value: text.slice(2) });
  }
  return out;
}

/** Splits an `a=` value into the attribute name and its value (undefined for property attributes). */
export function splitAttribute(value: string): [name: string, arg: string | undefined] {
  const colon = value.indexOf(':');
  return colon < 0 ? [value.trim(), undefined] : [value.slice(0, colon), value.slice(colon + 1)];
}

/** The attribute name of an `a=` line; undefined for any other line type. */
export function attributeName(l: SdpLine): string | undefined {
  return l.type === 'a' ? splitAttribute(l.value)[0] : undefined;
}

const C_LINE = /^IN (IP4|IP6) (\S+)$/;

/**
 * The address of a `c=` value: undefined when the value is not `IN IP4|IP6 <address>`. Multicast `c=` lines may
 * carry `/ttl` or `/count` (RFC 4566 §5.7): the address is what precedes the first slash (so it may be empty).
 */
export function connectionAddress(value: string): string | undefined {
  const c = C_LINE.exec(value);
  return c ? c[2]!.split('/')[0]! : undefined;
}

/**
 * The mids of an `a=group:BUNDLE` line (RFC 8843), or undefined for any other line. `BUNDLE` is the first token in
 * any case; mids never contain whitespace (the reader's `a=mid` check), so any run of it separates them.
 */
export function bundleGroupMids(l: SdpLine): string[] | undefined {
  if (l.type !== 'a') return undefined;
  const [name, arg] = splitAttribute(l.value);
  if (name !== 'group') return undefined;
  const parts = (arg ?? '').trim().split(/\s+/).filter((t) => t !== '');
  return parts[0]?.toUpperCase() === 'BUNDLE' ? parts.slice(1) : undefined;
}
