// Reviewer r2's attacks on the web app in headless Chromium against a real pushauthd: what a
// second tab, a repeated link, a server that cannot be reached at removal, or a malicious
// server's challenge list can make the app do. The malicious server is played by Playwright's
// routing (pushauthd itself refuses such contexts); the service worker is blocked so that the
// routing sees every request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { ART, Pushauthd, launch } from './harness.mjs';
import { b64url } from '../../webapp/app/bytes.js';
import { contextDigest } from '../../webapp/app/signing.js';

let srv;
let browser;
let context;

async function phoneContext() {
  return browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    serviceWorkers: 'block', locale: 'en-GB', timezoneId: 'UTC',
  });
}

/** The accounts the app keeps in IndexedDB, as { deviceId, user }. */
function accounts(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const req = indexedDB.open('pushauth', 1);
    req.onupgradeneeded = () => req.result.createObjectStore('accounts', { keyPath: 'deviceId' });
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const all = req.result.transaction('accounts').objectStore('accounts').getAll();
      all.onsuccess = () => { resolve(all.result.map((a) => ({ deviceId: a.deviceId, user: a.user }))); req.result.close(); };
    };
  }));
}

async function enroll(page, user) {
  await page.goto(srv.enrollLink(user));
  await page.locator('#enroll-button').tap();
  await page.waitForURL(`${srv.url}/app/**`);
}

before(async () => {
  srv = await Pushauthd.start();
  browser = await launch();
  context = await phoneContext();
});

after(async () => {
  await browser?.close();
  await srv?.close();
});

test('attack11_a_link_used_in_another_tab_leaves_no_token_in_the_address_and_no_key', async () => {
  const link = srv.enrollLink('carol');
  const first = await context.newPage();
  const second = await context.newPage();
  await first.goto(link);
  await second.goto(link);
  await second.locator('#enroll-form').waitFor();
  await first.locator('#enroll-button').tap();
  await first.waitForURL(`${srv.url}/app/**`);
  // (The new user is told that it worked, once: the notice's address is not kept.)
  await first.locator('#enrolled-notice').waitFor();
  assert.equal(first.url(), `${srv.url}/app/`);
  await second.locator('#enroll-button').tap();
  await second.getByText('unknown, already used or expired').waitFor();
  assert.ok(!second.url().includes('token'), second.url());
  assert.equal(await second.locator('#enroll-button').count(), 0, 'the form of a dead link is gone');
  const held = await accounts(second);
  assert.equal(held.length, 1, JSON.stringify(held));
  // What the enrolled page keeps: a non-extractable key in IndexedDB, nothing in localStorage.
  const kept = await second.evaluate(() => new Promise((resolve) => {
    indexedDB.open('pushauth', 1).onsuccess = (e) => {
      e.target.result.transaction('accounts').objectStore('accounts').getAll().onsuccess = async (g) => {
        const key = g.target.result[0].privateKey;
        let exported = true;
        try { await crypto.subtle.exportKey('pkcs8', key); } catch { exported = false; }
        resolve({ extractable: key.extractable, exported, local: Object.keys(localStorage) });
      };
    };
  }));
  assert.deepEqual(kept, { extractable: false, exported: false, local: [] });
  await first.close();
  await second.close();
});

test('attack11_a_second_link_for_a_user_this_app_holds_says_so_before_enrolling', async () => {
  const page = await context.newPage();
  await page.goto(srv.enrollLink('carol'));
  await page.locator('#enroll-form').waitFor();
  const warning = page.locator('#enroll-duplicate');
  await warning.waitFor({ timeout: 5000 });
  assert.match(await warning.textContent(), /already approves logins for carol/);
  await page.close();
});

test('attack11_a_context_key_cannot_pose_as_a_field_and_gets_no_signature', async () => {
  const page = await context.newPage();
  await page.goto(`${srv.url}/app/`);
  const [account] = await accounts(page);
  // What a malicious server sends: a real host "dev01" and a key "Host" saying "prod-db", a
  // key "account" naming another user, and a value made long to push the rest out of sight.
  const ctx = { service: 'sshd', host: 'dev01', Host: 'prod-db', account: 'root', rhost: `192.0.2.7${' '.repeat(300)}${'x'.repeat(600)}` };
  const now = Date.now();
  const challenge = {
    id: 'bWFsaWNpb3Vz', user: 'carol', state: 'acknowledged', context: ctx,
    context_digest: b64url(await contextDigest(ctx)), rp_nonce: b64url(new Uint8Array(32).fill(1)),
    created_at: new Date(now).toISOString(), expires_at: new Date(now + 120000).toISOString(),
    code_required: true, code_length: 6, rp_name: 'test',
  };
  let answered = 0;
  await page.route('**/v1/device/challenges?wait=*', (route) => route.fulfill({
    status: 200, contentType: 'application/json', body: JSON.stringify({ challenges: [challenge] }),
  }));
  await page.route('**/v1/device/challenges/*/response', (route) => { answered += 1; route.abort(); });
  await page.route('**/v1/device/challenges/*/ack', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: '{}' }));
  await page.reload();
  const card = page.locator('article.challenge');
  await card.waitFor();
  // Exactly one "Host" and one "Account" among the card's labelled fields, with the real values.
  const main = card.locator('dl.facts:not(.extra)');
  const labelled = await main.locator('dt').allTextContents();
  assert.equal(labelled.filter((t) => t === 'Host').length, 1, labelled.join('|'));
  assert.equal(labelled.filter((t) => t === 'Account').length, 1, labelled.join('|'));
  assert.equal(await main.locator('dt:text-is("Host") + dd').textContent(), 'dev01');
  assert.equal(await main.locator('dt:text-is("Account") + dd').textContent(), account.user);
  // The extra keys are shown, apart, under their raw names.
  assert.deepEqual(await card.locator('dl.extra dt').allTextContents(), ['Host', 'account']);
  // Nothing is wider than the phone, however long a value is.
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `page is ${width} px wide`);
  mkdirSync(ART, { recursive: true });
  await page.screenshot({ path: join(ART, 'attack-extra-keys.png'), fullPage: true });
  await card.locator('input.code').fill('123456');
  await card.getByRole('button', { name: 'Approve' }).tap();
  await card.getByText('malformed').waitFor();
  assert.equal(answered, 0, 'an answer was sent');
  await page.close();
});

test('attack11_remove_this_device_deletes_the_key_even_when_the_server_cannot_be_told', async () => {
  const page = await context.newPage();
  await page.goto(`${srv.url}/app/#settings`);
  const before = await accounts(page);
  assert.equal(before.length, 1);
  await page.route('**/v1/device', (route) => route.abort('connectionrefused'));
  await page.getByRole('button', { name: 'Remove this device' }).tap();
  await page.getByRole('button', { name: 'Yes, remove it' }).tap();
  const notice = page.locator('#removal-notice');
  await notice.waitFor({ timeout: 5000 });
  assert.match(await notice.textContent(), new RegExp(`pushauthd revoke ${before[0].deviceId}`));
  assert.deepEqual(await accounts(page), []);
  await page.locator('#welcome').waitFor();
  // The server was indeed not told: it still lists the device, as the notice says.
  assert.match(srv.cli('devices', 'carol'), new RegExp(before[0].deviceId));
  await page.close();
});
