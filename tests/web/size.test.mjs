// The app's whole transfer on first load, compressed: every file of webapp/app gzip-compressed
// (pushauthd serves the gzip variant to browsers that accept it; the service worker's first
// install fetches every file of the release, so this is what a first visit costs at most).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

const APP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'webapp', 'app');

test('issue11: the app\'s first load is under 100 KB compressed', () => {
  let raw = 0;
  let gz = 0;
  for (const name of readdirSync(APP)) {
    const bytes = readFileSync(join(APP, name));
    raw += bytes.length;
    // PNGs are compressed already; pushauthd sends them as they are when gzip does not help.
    gz += Math.min(bytes.length, gzipSync(bytes, { level: 9 }).length);
  }
  console.log(`webapp/app: ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB compressed`);
  assert.ok(gz < 100 * 1024, `${gz} bytes compressed`);
});
