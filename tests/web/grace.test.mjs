// Issue 12 in the web authenticator: a login approved on the phone opens a grace window for a
// relying party that asked for one; Settings' "End all grace windows" ends it with a signed
// request, and the next login asks the phone again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Pushauthd, launch, phone } from './harness.mjs';

let srv;
let browser;
let page;
let key;

before(async () => {
  srv = await Pushauthd.start();
  browser = await launch();
  const context = await phone(browser, srv.url);
  page = await context.newPage();
  await page.goto(srv.enrollLink('alice'));
  await page.locator('#enroll-button').tap();
  await page.waitForURL(`${srv.url}/app/**`);
  await page.locator('#empty').waitFor({ state: 'visible' });
  key = srv.addRp('grace-host');
});

after(async () => {
  await browser?.close();
  await srv?.close();
});

/** An SSH login from 192.0.2.7 asking a 300 s grace window. */
async function login() {
  const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
  const r = await fetch(`${srv.url}/v1/challenges`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      user: 'alice',
      context: { service: 'sshd', host: 'web01', rhost: '192.0.2.7' },
      rp_nonce: nonce,
      ttl_secs: 120,
      grace_secs: 300,
    }),
  });
  assert.equal(r.status, 201);
  return r.json();
}

test('issue12: "End all grace windows" in Settings makes the next login ask the phone again', async () => {
  const first = await login();
  assert.equal(first.state, 'pending');
  const card = page.locator('article.challenge').first();
  await card.waitFor({ state: 'visible', timeout: 10000 });
  await card.locator('input.code').tap();
  await page.keyboard.type(first.code);
  await card.getByRole('button', { name: 'Approve' }).tap();
  await page.locator('article.result.ok').waitFor({ state: 'visible', timeout: 10000 });
  await page.locator('article.result').first().getByRole('button', { name: 'Done' }).tap();

  const graced = await login();
  assert.equal(graced.state, 'approved');
  assert.equal(graced.grace.of, first.id);

  await page.goto(`${srv.url}/app/#settings`);
  const grace = page.locator('section.grace').first();
  await grace.waitFor();
  await grace.getByRole('button', { name: 'End all grace windows' }).tap();
  await grace.getByText('Done: the next login asks this phone again.').waitFor();
  assert.match(srv.audit('alice'), /grace_ended/);

  const again = await login();
  assert.equal(again.state, 'pending');
  assert.equal(again.grace, undefined);
});
