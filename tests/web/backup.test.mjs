// Issue 12: "New backup codes" in the web app's Settings, in Debian's Chromium against a real
// pushauthd: confirm, the set shown once with a copy button, the old set void, a relying party
// uses one of the shown codes, and the server's answer is what the page showed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { ART, Pushauthd, launch, phone } from './harness.mjs';

let srv;
let browser;
let context;
let page;

before(async () => {
  srv = await Pushauthd.start();
  browser = await launch();
  context = await phone(browser, srv.url);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.url });
  page = await context.newPage();
  await page.goto(srv.enrollLink('alice'));
  await page.locator('#enroll-button').tap();
  await page.waitForURL(`${srv.url}/app/**`);
  await page.locator('#empty').waitFor({ state: 'visible' });
});

after(async () => {
  await browser?.close();
  await srv?.close();
});

async function verify(apiKey, code) {
  const r = await fetch(`${srv.url}/v1/users/alice/backup-codes/verify`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ code, context: { service: 'sshd', host: 'web01' } }),
  });
  return { status: r.status, json: await r.json() };
}

test('issue12: Settings makes new backup codes after a confirmation and shows them once', async () => {
  const old = srv.cli('backup-codes', 'alice', '--count', '2').match(/[2-9A-Z]{4}(-[2-9A-Z]{4}){3}/g);
  assert.equal(old.length, 2);
  await page.goto(`${srv.url}/app/#settings`);
  const card = page.locator('section.card.backup');
  await card.waitFor({ state: 'visible' });
  // Cancel changes nothing.
  await card.getByRole('button', { name: 'New backup codes' }).tap();
  await card.getByText('Every backup code you have now stops working').waitFor();
  await card.getByRole('button', { name: 'Cancel' }).tap();
  assert.equal(await card.locator('ol.codes li').count(), 0);
  assert.doesNotMatch(srv.audit('alice'), /by device:/);
  // Confirmed: ten codes, grouped, shown once.
  await card.getByRole('button', { name: 'New backup codes' }).tap();
  await card.getByRole('button', { name: 'Yes, make new codes' }).tap();
  await card.locator('ol.codes li').first().waitFor();
  const codes = await card.locator('ol.codes li').allTextContents();
  assert.equal(codes.length, 10);
  for (const c of codes) assert.match(c, /^[2-9A-HJKMNP-TV-Z]{4}(-[2-9A-HJKMNP-TV-Z]{4}){3}$/);
  mkdirSync(ART, { recursive: true });
  await page.screenshot({ path: join(ART, 'issue12-backup-codes.png') });
  // Copy puts all of them on the clipboard.
  await card.getByRole('button', { name: 'Copy' }).tap();
  await card.getByText('Copied.').waitFor();
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(clip, codes.join('\n'));
  // Done hides them for good.
  await card.getByRole('button', { name: 'Done' }).tap();
  assert.equal(await card.locator('ol.codes li').count(), 0);
  await card.getByText('no longer shown').waitFor();
  assert.equal(await card.getByRole('button', { name: 'New backup codes' }).isVisible(), true);
  // The server issued them for this device; the old set is void, a shown code works once.
  assert.match(srv.audit('alice'), /backup_codes_issued.*10 codes by device:/);
  const key = srv.addRp('host');
  assert.equal((await verify(key, old[0])).status, 403);
  const used = await verify(key, codes[3]);
  assert.equal(used.status, 200, JSON.stringify(used.json));
  assert.equal(used.json.remaining, 10);
  assert.equal((await verify(key, codes[3])).status, 403);
  // Recent activity names the new set and the use, as text.
  await page.reload();
  const activity = page.locator('section.card.activity');
  await activity.getByText('A backup code was used on').waitFor();
  const text = await activity.textContent();
  assert.match(text, /host=web01/);
  assert.match(text, /A new set of 10 backup codes was issued on .* via device:/);
  assert.match(text, /10 unused codes left/);
});

test('issue12: a refused request says so and shows no codes', async () => {
  await page.goto(`${srv.url}/app/#settings`);
  const card = page.locator('section.card.backup');
  await card.waitFor({ state: 'visible' });
  await srv.stop();
  await card.getByRole('button', { name: 'New backup codes' }).tap();
  await card.getByRole('button', { name: 'Yes, make new codes' }).tap();
  await card.getByText('No new codes:').waitFor();
  assert.equal(await card.locator('ol.codes li').count(), 0);
  assert.equal(await card.getByRole('button', { name: 'New backup codes' }).isVisible(), true);
  await srv.serve();
});

test('issue12: notices of every kind read as plain text, hidden characters made visible', async () => {
  const { noticeText } = await import('../../webapp/app/notices.js');
  const used = noticeText({ kind: 'backup_code_used', at: '2026-01-02T03:04:05Z', via: 'rp:x', source: null,
    context: { host: 'web\u001b[2J01', rhost: '192.0.2.7' }, count: 9 });
  assert.match(used, /^A backup code was used on .*\(host=web\u241b\[2J01, rhost=192\.0\.2\.7\); 9 unused codes left\.$/);
  const later = noticeText({ kind: 'grace\u202eended', at: 'not a date', via: 'admin', context: {} });
  assert.equal(later, 'grace\ufffdended on not a date via admin.');
  const added = noticeText({ kind: 'device_added', at: '2026-01-02T03:04:05Z', device_name: 'tablet', source: '10.0.0.1:5', via: 'admin' });
  assert.match(added, /^New device "tablet" added on .* from 10\.0\.0\.1:5 via admin\.$/);
  const voided = noticeText({ kind: 'backup_codes_voided', at: '2026-01-02T03:04:05Z', via: 'admin' });
  assert.match(voided, /^Every backup code was voided on .* via admin; none work until a new set is issued\.$/);
});
