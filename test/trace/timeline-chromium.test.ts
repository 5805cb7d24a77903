/**
 * The timeline page as a browser draws it: headless Chromium (playwright-core, the flags of the interop tests) loads
 * the HTML with `page.setContent` and every request the page might make is aborted, so nothing leaves the machine.
 * Checks that the rows and marks are there (element counts) and that the picture is not blank (screenshot pixels).
 * Skipped with a warning when Chromium or playwright-core is missing; fails under CI instead.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { inflateSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../interop/chromium.js';
import { renderTimelineHtml } from '../../src/trace/timeline.js';
import { tracedRun } from './traced-run.js';

function available(): string | undefined {
  if (!existsSync(CHROMIUM_PATH)) return `${CHROMIUM_PATH} missing`;
  try {
    createRequire(import.meta.url).resolve('playwright-core');
  } catch {
    return 'playwright-core missing';
  }
  return undefined;
}
const missing = available();
if (missing && process.env['CI']) throw new Error(`timeline Chromium test cannot run under CI: ${missing}`);
if (missing) console.warn(`timeline Chromium test skipped: ${missing}`);

/** Distinct colours of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are). */
function pngColours(png: Buffer): number {
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  expect(png[24]).toBe(8);
  expect([2, 6]).toContain(png[25]);
  expect(png[28]).toBe(0);
  const bpp = png[25] === 6 ? 4 : 3;
  const chunks: Buffer[] = [];
  for (let o = 8; o < png.length; ) {
    const len = png.readUInt32BE(o);
    if (png.toString('latin1', o + 4, o + 8) === 'IDAT') chunks.push(png.subarray(o + 8, o + 8 + len));
    o += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(chunks));
  const stride = width * bpp;
  const prev = Buffer.alloc(stride);
  const line = Buffer.alloc(stride);
  const colours = new Set<number>();
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? line[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      const p = a + b - c;
      const pr = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const add = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : pr;
      line[i] = (src[i]! + add) & 0xff;
    }
    for (let x = 0; x < width; x++) colours.add((line[x * bpp]! << 16) | (line[x * bpp + 1]! << 8) | line[x * bpp + 2]!);
    line.copy(prev);
  }
  return colours.size;
}

let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
});

describe.skipIf(missing !== undefined)('the timeline in Chromium', () => {
  it('shows a row per pair with its checks and outcomes, and is not blank', { timeout: 60_000 }, async () => {
    const { events, expected } = tracedRun();
    const html = renderTimelineHtml(events, { title: 'chromium render test' });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS], timeout: 30_000 });
    const page = await browser.newPage();
    const requests: string[] = [];
    await page.route('**/*', (route) => {
      requests.push(route.request().url());
      return route.abort();
    });
    await page.setContent(html, { waitUntil: 'load', timeout: 15_000 });
    const count = (selector: string) => page.locator(selector).count();
    expect(await count('svg g.row')).toBe(expected.rows);
    expect(await count('svg .check-sent')).toBe(expected.checks + 2); // + the two legend entries
    expect(await count('svg .outcome.success')).toBe(expected.successes + 1);
    expect(await count('svg .retransmit')).toBe(expected.retransmits + 1);
    expect(await count('svg g.row .selected')).toBe(expected.selected);
    expect(await count('svg .marker.state')).toBe(expected.states);
    expect(await count('svg .pair-label title')).toBe(expected.rows);
    // The SVG was laid out at its full size.
    const box = await page.locator('svg').boundingBox();
    expect(box!.width).toBeGreaterThan(1000);
    expect(box!.height).toBeGreaterThan(200);
    const shot = await page.locator('svg').screenshot({ type: 'png' });
    expect(pngColours(shot)).toBeGreaterThan(20);
    expect(requests).toEqual([]);
  });
});
