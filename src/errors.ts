/**
 * Typed errors. Every error has a stable string `code`; core machines never throw on network input (they drop and
 * count), so these surface only for API misuse, as events, or from the throwing convenience wrappers.
 * @module
 */

/** Base class of all icewire errors. */
export class IcewireError extends Error {
  /** Stable machine-readable code, e.g. `'ERR_STUN_DECODE'`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Why a STUN message could not be decoded or verified. */
export type StunDecodeReason =
  | 'short-header'
  | 'not-stun'
  | 'bad-cookie'
  | 'bad-length'
  | 'attribute-overrun'
  | 'bad-padding'
  | 'bad-attribute'
  | 'too-many-attributes'
  | 'integrity-mismatch'
  | 'fingerprint-mismatch'
  | 'missing-integrity';

/** A STUN message that could not be decoded (or failed verification). `offset` is the byte where it went wrong. */
export class StunDecodeError extends IcewireError {
  readonly reason: StunDecodeReason;
  readonly offset: number;
  constructor(reason: StunDecodeReason, offset: number, detail?: string) {
    super('ERR_STUN_DECODE', `STUN decode failed: ${reason} at byte ${offset}${detail ? ` (${detail})` : ''}`);
    this.reason = reason;
    this.offset = offset;
  }
}

/** A STUN transaction ended without success: a time-out, or an error response with its code. */
export class StunTransactionError extends IcewireError {
  readonly kind: 'timeout' | 'error-response' | 'cancelled';
  /** STUN error code (e.g. 487) for `'error-response'`. */
  readonly errorCode: number | undefined;
  readonly reasonPhrase: string | undefined;
  constructor(kind: 'timeout' | 'error-response' | 'cancelled', errorCode?: number, reasonPhrase?: string) {
    super(
      'ERR_STUN_TRANSACTION',
      kind === 'error-response' ? `STUN error response ${errorCode} ${reasonPhrase ?? ''}`.trim() : `STUN transaction ${kind}`,
    );
    this.kind = kind;
    this.errorCode = errorCode;
    this.reasonPhrase = reasonPhrase;
  }
}

/**
 * At most `max` characters of peer-supplied text for an error message: a hostile line may be megabytes long, and the
 * message is copied into every log line and stack trace.
 */
function clip(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/** A candidate line or record that does not follow RFC 8839 §5.1. `field` names what was wrong. */
export class CandidateParseError extends IcewireError {
  readonly field: string;
  constructor(field: string, detail: string) {
    super('ERR_CANDIDATE_PARSE', `bad candidate ${field}: ${clip(detail, 300)}`);
    this.field = field;
  }
}

/** Bad SDP. `line` is 1-based (0 when not tied to one line); `text` is the offending line. */
export class SdpError extends IcewireError {
  readonly line: number;
  readonly text: string;
  constructor(line: number, text: string, detail: string) {
    // The message quotes a bounded part of the line (see `clip`); `text` keeps the whole line.
    super('ERR_SDP', line > 0 ? `SDP line ${line} "${clip(text)}": ${clip(detail, 400)}` : `SDP: ${clip(detail, 400)}`);
    this.line = line;
    this.text = text;
  }
}

/**
 * A public method was given an argument of the wrong type or outside its domain: `null` or `{}` where a string is
 * expected, a number where a record is expected, an unknown enum value such as a description type `'pranswer2'`, a
 * ufrag of 3 characters. Plain JavaScript callers (and TypeScript callers going through `as any` or JSON) meet it
 * instead of a raw `TypeError` from deep inside. It is an {@link IcewireError} (code `'ERR_INVALID_ARGUMENT'`), not a
 * `TypeError`: one class hierarchy, so `instanceof IcewireError` catches every error icewire throws on purpose.
 * `argument` names the parameter (e.g. `'params.ufrag'`).
 */
export class IceArgumentError extends IcewireError {
  readonly argument: string;
  constructor(argument: string, detail: string) {
    super('ERR_INVALID_ARGUMENT', `bad argument ${argument}: ${clip(detail, 300)}`);
    this.argument = argument;
  }
}

/** A method was called in a state that does not allow it (e.g. `send()` after `close()`). */
export class InvalidStateError extends IcewireError {
  constructor(message: string) {
    super('ERR_INVALID_STATE', message);
  }
}

/** Why a TURN operation failed (RFC 8656 §7.4, §19; RFC 8489 §9.2.5). */
export type TurnErrorReason =
  | 'try-alternate'
  | 'bad-request'
  | 'unauthorized'
  | 'forbidden'
  | 'unknown-attribute'
  | 'allocation-mismatch'
  | 'stale-nonce'
  | 'address-family-not-supported'
  | 'wrong-credentials'
  | 'unsupported-transport'
  | 'peer-address-family-mismatch'
  | 'quota-reached'
  | 'server-error'
  | 'insufficient-capacity'
  | 'timeout'
  | 'integrity'
  | 'allocation-expired'
  | 'connection-closed'
  | 'closed'
  | 'bad-uri'
  | 'bad-config'
  | 'error-response';

/**
 * A TURN failure. `code` is `'ERR_TURN'` like every IcewireError; `errorCode` is the STUN error code from the
 * server (401, 403, 437, 438, 486, 508...), 408 for a transaction time-out (RFC 8656 §7.4), or 0 for a local
 * failure with no server code (bad URI, integrity violation, lost connection).
 */
export class TurnError extends IcewireError {
  readonly errorCode: number;
  readonly reason: TurnErrorReason;
  constructor(errorCode: number, reason: TurnErrorReason, message: string, options?: { cause?: unknown }) {
    super('ERR_TURN', message, options);
    this.errorCode = errorCode;
    this.reason = reason;
  }
}

/** A check trace that could not be read (`icewire timeline`): `line` is its 1-based line, when it has one. */
export class TraceParseError extends IcewireError {
  readonly line: number | undefined;
  constructor(message: string, line?: number) {
    super('ERR_TRACE_PARSE', line === undefined ? message : `line ${line}: ${message}`);
    this.line = line;
  }
}
