// Renders the app's PNG icons from webapp/app/icon.svg (drawn for this project) with Debian's
// Chromium: 192 and 512 (purpose "any") and a 512 maskable one (full-bleed background, the
// drawing inside the central 80 % safe zone). Run by hand after changing the SVG:
//   node tests/web/tools/render-icons.mjs, then pngquant --quality 70-95 --strip each PNG.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../chromium-args.mjs';

const APP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'webapp', 'app');
const svg = readFileSync(join(APP, 'icon.svg'), 'utf8');
const inner = svg.replace(/^[\s\S]*?<svg[^>]*>/, '').replace(/<\/svg>\s*$/, '').replace(/<title>.*?<\/title>/, '');
const maskable = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512"><rect width="512" height="512" fill="#0e6b58"/><g transform="translate(76.8 76.8) scale(0.7)">${inner}</g></svg>`;

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
const page = await browser.newPage();
for (const [name, source, size] of [['icon-192.png', svg, 192], ['icon-512.png', svg, 512], ['icon-maskable-512.png', maskable, 512]]) {
  await page.setViewportSize({ width: size, height: size });
  await page.setContent(`<style>html,body{margin:0;background:transparent}svg{display:block;width:${size}px;height:${size}px}</style>${source}`);
  await page.screenshot({ path: join(APP, name), omitBackground: true });
}
await browser.close();
