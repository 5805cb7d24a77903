/**
 * The check trace (`TraceEvent`) as JSON lines: one event per line, the format `icewire timeline` reads.
 * @module
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { TraceEvent, TraceSink } from '../checklist/trace.js';

/** A trace sink writing to a file, and how to finish it. */
export interface TraceFile {
  /** Pass as the `trace` option of `IceAgent`, `IceSdpSession`, `AgentMachine` or `AgentCore`. */
  readonly trace: TraceSink;
  /** Flushes and closes the file; rejects with the first write error, if any. */
  close(): Promise<void>;
}

/** One JSON line for an event. */
export function traceLine(e: TraceEvent): string {
  return `${JSON.stringify(e)}\n`;
}

/** A sink writing each event as a JSON line to `stream` (the caller owns and ends the stream). */
export function traceToStream(stream: Writable): TraceSink {
  return (e) => {
    stream.write(traceLine(e));
  };
}

/**
 * A sink writing JSON lines to the file at `path` (created or truncated). A write error never reaches the agent:
 * later events are dropped and `close()` rejects with it.
 */
export function traceToFile(path: string): TraceFile {
  const file = createWriteStream(path, { flags: 'w' });
  let failure: Error | undefined;
  file.on('error', (e) => {
    failure ??= e;
  });
  return {
    trace: (e) => {
      if (failure === undefined && !file.writableEnded && !file.destroyed) file.write(traceLine(e));
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        const done = () => (failure ? reject(failure) : resolve());
        if (file.destroyed || file.writableFinished) return done();
        // end's callback gets the stream's error (a file that could not be opened) before the 'error' listeners do.
        file.end((err?: Error | null) => {
          failure ??= err ?? undefined;
          done();
        });
      }),
  };
}
