/**
 * `icewire timeline`: draws a check trace (JSON lines, as `traceToFile` writes them) as a self-contained SVG or
 * HTML picture (`src/trace/timeline.ts`).
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { TraceParseError } from '../errors.js';
import { parseTraceLines, renderTimelineHtml, renderTimelineSvg } from '../trace/timeline.js';
import { ExitCode, UsageError, type CliIo } from './output.js';

export const timelineUsage = `icewire timeline TRACE.jsonl [-o OUT.html|OUT.svg] [--format html|svg] [--title TEXT]

  Draws a check trace (the JSON lines an agent's \`trace\` option writes, e.g. through traceToFile) as a timeline:
  one row per candidate pair, each check with its outcome, retransmissions, nomination, the selected pair and the
  state changes. The picture needs nothing else: no scripts, no external files. Hover a mark or a pair for details.
  -o FILE         write there (default: stdout); the format follows its extension (.svg, else HTML)
  --format F      html or svg (overrides the extension)
  --title TEXT    title above the picture (default: the trace file's name)
  Exit code 1 when the trace cannot be read as one, 3 when a file cannot be read or written.`;

export async function timeline(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      output: { type: 'string', short: 'o' },
      format: { type: 'string' },
      title: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'a trace file is required' : `one trace file, not ${positionals.length}`);
  const input = positionals[0]!;
  const format = values.format ?? (values.output !== undefined && extname(values.output).toLowerCase() === '.svg' ? 'svg' : 'html');
  if (format !== 'html' && format !== 'svg') throw new UsageError(`--format ${format}: expected html or svg`);
  let text: string;
  try {
    text = await readFile(input, 'utf8');
  } catch (e) {
    io.stderr.write(`icewire timeline: cannot read ${input}: ${(e as Error).message}\n`);
    return ExitCode.Local;
  }
  let events;
  try {
    events = parseTraceLines(text);
  } catch (e) {
    if (!(e instanceof TraceParseError)) throw e;
    io.stderr.write(`icewire timeline: ${input}: ${e.message}\n`);
    return ExitCode.Failed;
  }
  const options = { title: values.title ?? `icewire check timeline: ${input}` };
  const picture = format === 'svg' ? renderTimelineSvg(events, options) : renderTimelineHtml(events, options);
  if (values.output === undefined) {
    io.stdout.write(picture);
    return ExitCode.Ok;
  }
  try {
    await writeFile(values.output, picture);
  } catch (e) {
    io.stderr.write(`icewire timeline: cannot write ${values.output}: ${(e as Error).message}\n`);
    return ExitCode.Local;
  }
  io.stderr.write(`${events.length} events, ${format.toUpperCase()} written to ${values.output}\n`);
  return ExitCode.Ok;
}
