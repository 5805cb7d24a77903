/** Random edits of SDP text for robustness properties. */
import fc from 'fast-check';

/** One edit: delete/insert/replace a character, truncate, duplicate or drop a line. */
export const mutation = fc.record({
  pos: fc.nat(),
  op: fc.constantFrom('delete', 'insert', 'replace', 'truncate', 'duplicate-line', 'drop-line'),
  ch: fc.constantFrom(' ', ':', '/', '0', '9', 'a', 'x', '=', '-', '.', '\r\n', '\n', '\t', '\u0000', 'é'),
});

/** Applies the edits in order. */
export function mutate(text: string, ms: readonly { pos: number; op: string; ch: string }[]): string {
  for (const m of ms) {
    const p = text.length === 0 ? 0 : m.pos % text.length;
    const lines = text.split('\r\n');
    const li = m.pos % lines.length;
    if (m.op === 'delete') text = text.slice(0, p) + text.slice(p + 1);
    else if (m.op === 'insert') text = text.slice(0, p) + m.ch + text.slice(p);
    else if (m.op === 'replace') text = text.slice(0, p) + m.ch + text.slice(p + 1);
    else if (m.op === 'truncate') text = text.slice(0, p);
    else if (m.op === 'duplicate-line') text = [...lines.slice(0, li + 1), ...lines.slice(li)].join('\r\n');
    else text = [...lines.slice(0, li), ...lines.slice(li + 1)].join('\r\n');
  }
  return text;
}
