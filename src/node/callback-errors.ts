/**
 * Where the IO edge reports exceptions it caught from user callbacks, `send` functions and machines, so that none
 * can unwind through a drain loop and leave a machine half-drained.
 * @module
 */

/** Where an exception caught by the edge came from. */
export type CallbackErrorSource =
  /** A user event callback threw. */
  | 'event'
  /** The `send` function threw. */
  | 'send'
  /** The `onUnhandled` callback threw. */
  | 'unhandled'
  /** A machine method threw, or returned an invalid deadline: a bug in the machine, reported rather than rethrown. */
  | 'machine'
  /** A raw {@link TimerScheduler} callback threw. */
  | 'timer';

/** Receives exceptions the edge caught so that they cannot unwind through a machine's drain. */
export type CallbackErrorHandler = (error: unknown, source: CallbackErrorSource) => void;

/** Default error sink: a process warning, so a faulty callback is visible but never fatal to the loop. */
export function warnCallbackError(error: unknown, source: CallbackErrorSource): void {
  const message = error instanceof Error ? error.message : String(error);
  const detail = error instanceof Error ? error.stack : undefined;
  process.emitWarning(
    `icewire: ${source} callback threw: ${message}`,
    detail === undefined
      ? { type: 'IcewireCallbackWarning', code: 'ICEWIRE_CALLBACK_ERROR' }
      : { type: 'IcewireCallbackWarning', code: 'ICEWIRE_CALLBACK_ERROR', detail },
  );
}

/** Calls `handler`, falling back to a warning if the handler itself throws. */
export function reportCallbackError(handler: CallbackErrorHandler, error: unknown, source: CallbackErrorSource): void {
  try {
    handler(error, source);
  } catch (secondary) {
    warnCallbackError(secondary, source);
  }
}
