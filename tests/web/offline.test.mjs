// Issue 12: offline codes in the web authenticator. The app imports the secret from the
// enrollment answer as a non-extractable HMAC key, shows the code for its next counter under
// Settings > "Offline code", and shows exactly what `pushauth-device offline-code` shows for the
// same secret; the RFC 4226 and SHA-256 vectors of proto/test-vectors.json run through the
// app's own module in Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BIN, Pushauthd, launch, phone } from './harness.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const VECTORS = JSON.parse(readFileSync(join(ROOT, 'proto', 'test-vectors.json'), 'utf8')).hotp;

let srv;
let browser;
let page;
let enrolled = null;
const pageErrors = [];

before(async () => {
  srv = await Pushauthd.start();
  browser = await launch();
  const context = await phone(browser, srv.url);
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // The test reads the enrollment answer off the wire (passing it on unchanged): the app
  // itself never exposes the secret. Read in the route, before the page navigates away.
  await page.route('**/v1/device/enroll', async (route) => {
    const response = await route.fetch();
    const body = await response.text();
    if (response.status() === 200) enrolled = JSON.parse(body);
    await route.fulfill({ response, body });
  });
});

after(async () => {
  await browser?.close();
  await srv?.close();
});

/** `pushauth-device offline-code` for a CLI profile holding `offline` (its next counter). */
function cliCodes(offline, count) {
  const dir = mkdtempSync(join(tmpdir(), 'pushauth-offline-cli-'));
  try {
    chmodSync(dir, 0o700);
    const profile = join(dir, 'default.toml');
    writeFileSync(profile, [
      `server = "${srv.url}"`, 'user = "alice"', `device_id = "${enrolled.device_id}"`, 'name = "cli twin"',
      'alg = "ed25519"', `key_seed = "${Buffer.alloc(32, 9).toString('base64url')}"`, '',
      '[offline]', `secret = "${offline.secret}"`, `digits = ${offline.digits}`,
      `algorithm = "${offline.algorithm}"`, `counter = ${offline.counter}`, '',
    ].join('\n'), { mode: 0o600 });
    const codes = [];
    for (let i = 0; i < count; i++) {
      codes.push(execFileSync(join(BIN, 'pushauth-device'), ['offline-code'], {
        encoding: 'utf8', env: { ...process.env, PUSHAUTH_DEVICE_DIR: dir }, stdio: ['ignore', 'pipe', 'ignore'],
      }).trim());
    }
    return codes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('issue12: the app shows the same offline codes as pushauth-device, from a non-extractable key', async () => {
  await page.goto(srv.enrollLink('alice'));
  await page.locator('#enroll-button').tap();
  await page.waitForURL(`${srv.url}/app/**`);
  assert.ok(enrolled && enrolled.offline, JSON.stringify(enrolled));
  assert.equal(enrolled.offline.algorithm, 'sha256');
  assert.equal(enrolled.offline.counter, 0);

  await page.goto(`${srv.url}/app/#settings`);
  const button = page.locator('.offline-button').first();
  await button.waitFor({ state: 'visible' });
  const shown = [];
  for (let i = 1; i <= 3; i++) {
    await button.tap();
    const code = page.locator('.offline-code').first();
    await page.waitForFunction((n) => document.querySelector('.offline-code')?.dataset.counter === String(n), i);
    shown.push(await code.textContent());
  }
  assert.ok(shown.every((c) => /^\d{3} \d{3}$/.test(c)), JSON.stringify(shown));
  assert.deepEqual(shown, cliCodes(enrolled.offline, 3));

  // The counter survives a reload (IndexedDB), and the key's bytes cannot be read back.
  const facts = await page.evaluate(async () => {
    const { listAccounts } = await import('/app/keystore.js');
    const [account] = await listAccounts();
    let exported = 'refused';
    try {
      await crypto.subtle.exportKey('raw', account.offline.key);
      exported = 'exported';
    } catch { /* expected */ }
    return { counter: account.offline.counter, extractable: account.offline.key.extractable, exported, type: account.offline.key.algorithm.name };
  });
  assert.deepEqual(facts, { counter: 3, extractable: false, exported: 'refused', type: 'HMAC' });
  await page.reload();
  await page.locator('.offline-button').first().tap();
  await page.waitForFunction(() => document.querySelector('.offline-code')?.dataset.counter === '4');
  assert.equal(await page.locator('.offline-code').first().textContent(), cliCodes({ ...enrolled.offline, counter: 3 }, 1)[0]);
  assert.deepEqual(pageErrors, []);
});

test('issue12: proto/test-vectors.json hotp through the app\'s offline.js in Chromium', async () => {
  assert.ok(VECTORS.length >= 30);
  const results = await page.evaluate(async (vectors) => {
    const { importOfflineSecret, hotp } = await import('/app/offline.js');
    const out = [];
    for (const v of vectors) {
      const key = await importOfflineSecret(v.secret, v.algorithm);
      out.push(await hotp(key, v.counter, v.digits));
    }
    return out;
  }, VECTORS);
  assert.deepEqual(results, VECTORS.map((v) => v.code));
  // RFC 4226 Appendix D is among them.
  const rfc = VECTORS.filter((v) => v.algorithm === 'sha1' && v.digits === 6 && v.counter < 10).map((v) => v.code);
  assert.deepEqual(rfc, ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489']);
});
