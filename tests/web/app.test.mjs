// The web authenticator end to end: a real pushauthd built from this tree, Debian's Chromium as
// a 390×844 touch phone, and the relying party `pushauthd push` (the README's), or the RP API
// where a test needs its own context. Tests run in order and share the phone and the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { ART, CHROMIUM_ARGS, PushService, Pushauthd, launch, phone } from './harness.mjs';

let srv;
let pushService;
let browser;
let context;
let page;
let deviceId;
const dialogs = [];
const pageErrors = [];

async function shot(name) {
  mkdirSync(ART, { recursive: true });
  await page.screenshot({ path: join(ART, `${name}.png`) });
  // A small copy for the README (docs/screenshots holds the chosen ones).
  await page.screenshot({ path: join(ART, `${name}-small.png`), scale: 'css' });
}

/** Devices of a user from `pushauthd devices`, as { id, name, alg, status } rows. */
function devices(user) {
  return srv.cli('devices', user).trim().split('\n').filter((l) => l.includes('\t')).map((line) => {
    const f = line.split('\t');
    return { id: f[0], name: f[1], alg: f[2], status: f[5] };
  });
}

/** The card of the one open challenge, once it is on screen; how long it took. */
async function challengeShown(started) {
  const card = page.locator('article.challenge').first();
  await card.waitFor({ state: 'visible', timeout: 10000 });
  return { card, ms: Date.now() - started };
}

async function answer(decision, code) {
  const card = page.locator('article.challenge').first();
  if (code !== undefined) {
    await card.locator('input.code').tap();
    await page.keyboard.type(code);
  }
  const label = { approve: 'Approve', deny: 'Deny', report: 'This wasn\'t me' }[decision];
  await card.getByRole('button', { name: label }).tap();
  const result = page.locator('article.result').first();
  await result.waitFor({ state: 'visible', timeout: 10000 });
  return result;
}

async function dismiss() {
  await page.locator('article.result').first().getByRole('button', { name: 'Done' }).tap();
}

before(async () => {
  pushService = await PushService.start();
  srv = await Pushauthd.start(pushService.origin);
  browser = await launch();
  context = await phone(browser, srv.url);
  page = await context.newPage();
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
});

after(async () => {
  await browser?.close();
  await srv?.close();
  pushService?.close();
});

test('issue11: the link pushauthd enroll prints enrolls this phone with an ed25519 key', async () => {
  const link = srv.enrollLink('alice');
  await page.goto(link);
  await page.locator('#enroll-form').waitFor();
  assert.equal(await page.locator('#enroll-user').textContent(), 'alice');
  assert.equal(await page.locator('#enroll-server').textContent(), srv.url);
  assert.equal(await page.locator('#device-name').inputValue(), 'Chrome on Android');
  await page.locator('#device-name').fill('Alice\'s Pixel');
  await shot('1-enroll');
  await page.locator('#enroll-button').tap();
  await page.waitForURL(`${srv.url}/app/**`);
  await page.locator('#empty').waitFor({ state: 'visible' });
  // The token left the address bar and the history: going back does not reach it.
  assert.ok(!page.url().includes('token'), page.url());
  await page.goBack();
  assert.ok(!page.url().includes('token'), `back went to ${page.url()}`);
  await page.goForward();
  await page.locator('#empty').waitFor({ state: 'visible' });
  const list = devices('alice');
  assert.equal(list.length, 1, JSON.stringify(list));
  assert.equal(list[0].alg, 'ed25519');
  assert.equal(list[0].name, 'Alice\'s Pixel');
  deviceId = list[0].id;
  // The used link is now refused by the lookup, and the page says so in plain words.
  const again = await context.newPage();
  await again.goto(link);
  await again.getByText('unknown, already used or expired').waitFor();
  await again.close();
});

test('issue11: forced to P-256, the page enrolls an es256 key', async () => {
  const other = await phone(browser, srv.url);
  await other.addInitScript(() => localStorage.setItem('pushauth.test.alg', 'es256'));
  const p = await other.newPage();
  await p.goto(srv.enrollLink('bob'));
  await p.locator('#enroll-button').tap();
  await p.waitForURL(`${srv.url}/app/**`);
  await p.locator('#empty').waitFor({ state: 'visible' });
  const list = devices('bob');
  assert.equal(list.length, 1, JSON.stringify(list));
  assert.equal(list[0].alg, 'es256');
  // And it answers: a signed long-poll and a signed approval with a P-256 key.
  const login = srv.push('bob');
  const code = await login.code;
  await p.locator('article.challenge input.code').fill(code);
  await p.getByRole('button', { name: 'Approve' }).tap();
  await p.locator('article.result.ok').waitFor();
  const { status, out } = await login.done;
  assert.equal(status, 0, out);
  assert.match(out, new RegExp(`approved on .* \\(${list[0].id}\\); the signature verified`));
  await other.close();
});

test('issue11: a push login appears within a second; the typed code approves it, verified', async () => {
  await page.goto(`${srv.url}/app/`);
  await page.locator('#empty').waitFor({ state: 'visible' });
  await page.waitForTimeout(500); // the long-poll is waiting now
  const started = Date.now();
  const login = srv.push('alice');
  const code = await login.code;
  assert.match(code, /^\d{2,8}$/);
  const { card, ms } = await challengeShown(started);
  assert.ok(ms < 1000, `the challenge took ${ms} ms to appear`);
  console.log(`push to card on screen: ${ms} ms`);
  const text = await card.textContent();
  assert.match(text, /Test login request/);
  assert.match(text, /alice/);
  assert.match(text, /Test push from pushauthd/);
  assert.match(text, /Time left/);
  const input = card.locator('input.code');
  assert.equal(await input.getAttribute('inputmode'), 'numeric');
  assert.equal(await input.getAttribute('autocomplete'), 'one-time-code');
  assert.equal(code.length, 6, 'six digits by default (NIST SP 800-63B-4)');
  assert.equal(await input.getAttribute('data-length'), '6');
  assert.equal(await input.getAttribute('pattern'), `[0-9]{${code.length}}`);
  await input.tap();
  await page.keyboard.type(code);
  await shot('2-challenge');
  await card.getByRole('button', { name: 'Approve' }).tap();
  const result = page.locator('article.result.ok');
  await result.waitFor();
  assert.match(await result.textContent(), /Approved/);
  await shot('3-result');
  const { status, out } = await login.done;
  assert.equal(status, 0, out);
  assert.match(out, new RegExp(`approved on Alice's Pixel \\(${deviceId}\\); the signature verified`));
  await dismiss();
});

test('issue11: deny, wrong code and "this wasn\'t me" end the login as such', async () => {
  let login = srv.push('alice');
  await login.code;
  await challengeShown(Date.now());
  let result = await answer('deny');
  assert.match(await result.textContent(), /Denied/);
  let end = await login.done;
  assert.notEqual(end.status, 0);
  assert.match(end.out, new RegExp(`denied on ${deviceId}`));
  await dismiss();

  login = srv.push('alice');
  const code = await login.code;
  const wrong = code.replace(/\d$/, (d) => String((Number(d) + 1) % 10));
  await challengeShown(Date.now());
  result = await answer('approve', wrong);
  assert.match(await result.textContent(), /code did not match/);
  end = await login.done;
  assert.match(end.out, new RegExp(`wrong code typed on ${deviceId}`));
  assert.match(srv.audit('alice'), /code_mismatch/);
  await dismiss();

  login = srv.push('alice');
  await login.code;
  await challengeShown(Date.now());
  result = await answer('report');
  assert.match(await result.textContent(), /Reported/);
  end = await login.done;
  assert.match(end.out, new RegExp(`reported as "not me" on ${deviceId}`));
  await dismiss();
  srv.cli('unlock', 'alice');
});

test('issue11: after ten wrong codes in a row the eleventh login is refused as locked', async () => {
  srv.cli('unlock', 'alice');
  for (let i = 1; i <= 10; i += 1) {
    const login = srv.push('alice');
    const code = await login.code;
    if (!code) assert.fail(`push ${i} was refused: ${(await login.done).out}`);
    const wrong = code.replace(/\d$/, (d) => String((Number(d) + 1) % 10));
    await challengeShown(Date.now());
    const result = await answer('approve', wrong);
    assert.match(await result.textContent(), /code did not match/);
    assert.match((await login.done).out, /wrong code typed/);
    await dismiss();
  }
  const eleventh = await srv.push('alice').done;
  assert.notEqual(eleventh.status, 0);
  assert.match(eleventh.out, /lock/i);
  assert.equal(await page.locator('article.challenge').count(), 0);
  srv.cli('unlock', 'alice');
});

test('issue11: an SSH login shows its context in plain words', async () => {
  const key = srv.addRp('bastion.example.org');
  const created = await srv.challenge(key, 'alice', {
    service: 'sshd', host: 'web01.example.org', rhost: '203.0.113.24', tty: 'ssh',
    ssh_key: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const { card } = await challengeShown(Date.now());
  const text = await card.textContent();
  for (const part of ['SSH login on web01.example.org', 'bastion.example.org', '203.0.113.24', 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8']) {
    assert.ok(text.includes(part), `${part} in ${text}`);
  }
  await card.locator('input.code').tap();
  await page.keyboard.type(created.json.code.slice(0, 3));
  await shot('2-challenge-ssh');
  await page.keyboard.type(created.json.code.slice(3));
  await card.getByRole('button', { name: 'Approve' }).tap();
  await page.locator('article.result.ok').waitFor();
  await shot('3-result-ssh');
  // The relying party reads the verified answer: approved by this device.
  const r = await fetch(`${srv.url}/v1/challenges/${created.json.id}`, { headers: { Authorization: `Bearer ${key}` } });
  const status = await r.json();
  assert.equal(status.state, 'approved');
  assert.equal(status.device_id, deviceId);
  await dismiss();
});

test('issue14: an approval asked on someone else\'s behalf shows its message first, with no code to type', async () => {
  const key = srv.addRp('deploy-pipeline');
  const message = 'Deploy 2.3 to prod';
  const created = await srv.challenge(key, 'alice', {
    action: 'approval', message, requester: 'ci-runner-7', host: 'build01',
  }, { code: false });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const { card } = await challengeShown(Date.now());
  assert.equal(await card.locator('h2').textContent(), 'Approval asked by ci-runner-7');
  // The message comes right under the title, before every other detail, and only there.
  assert.equal(await card.locator('h2 + p.approval-message').textContent(), message);
  const text = await card.textContent();
  assert.equal(text.split(message).length - 1, 1, text);
  assert.ok(text.includes('Requested by') && text.includes('build01'), text);
  assert.equal(await card.locator('input.code').count(), 0);
  // A long requester is cut in the title (the message stays in view); the whole of it is a detail.
  const cut = await page.evaluate(async () => (await import('/app/challenge-view.js')).titleOf({ action: 'approval', requester: 'r'.repeat(300) }));
  assert.equal(cut, `Approval asked by ${'r'.repeat(63)}…`);
  await shot('7-approval');
  const result = await answer('approve');
  assert.ok(await result.evaluate((n) => n.classList.contains('ok')));
  const r = await fetch(`${srv.url}/v1/challenges/${created.json.id}`, { headers: { Authorization: `Bearer ${key}` } });
  const status = await r.json();
  assert.equal(status.state, 'approved');
  assert.equal(status.device_id, deviceId);
  await dismiss();
});

test('issue11: context values are shown as text, never as markup; the app refuses a digest that does not match', async () => {
  // Every page of the app carries the CSP (no inline script, no framing) and no referrer.
  for (const path of ['/app/', '/enroll?token=x', '/app/app.js']) {
    const r = await fetch(`${srv.url}${path}`);
    const csp = r.headers.get('content-security-policy') || '';
    assert.match(csp, /script-src 'self'/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer', path);
  }
  const key = srv.addRp('web-e2e');
  // The server keeps terminal escapes out of contexts altogether.
  const refused = await srv.challenge(key, 'alice', { service: 'sshd', message: 'a\u001b[2Jb' });
  assert.equal(refused.status, 400, JSON.stringify(refused.json));
  const hostile = '<img src=x onerror=alert(1)>';
  const context = {
    service: 'sshd',
    host: 'web01',
    rhost: '192.0.2.7',
    ssh_key: 'SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
    message: `${hostile} [31mred[0m "><svg onload=alert(2)>`,
    user: '<b>root</b>',
  };
  const created = await srv.challenge(key, 'alice', context);
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const { card } = await challengeShown(Date.now());
  const text = await card.textContent();
  assert.ok(text.includes(hostile), text);
  assert.ok(text.includes('<b>root</b>'), text);
  assert.equal(await page.locator('main img, main svg, main b').count(), 0);
  assert.deepEqual(dialogs, []);
  // Terminal escapes that reach the page another way are drawn as symbols, not obeyed.
  const shown = await page.evaluate(async () => (await import('/app/dom.js')).visible('a\u001b[2Jb\u202e'));
  assert.equal(shown, 'a\u241b[2Jb\ufffd');
  // A server that sends a digest for other details gets no signature.
  const refusedSign = await page.evaluate(async (id) => {
    const { listAccounts } = await import('/app/keystore.js');
    const { signedAnswer } = await import('/app/answer.js');
    const [account] = await listAccounts();
    const challenge = { id, user: 'alice', context: { service: 'sshd', host: 'other' },
      context_digest: 'NkaRvsTkAo45vOrX4WYHQ68oAKogHSun0fT6-5kde8A', rp_nonce: 'AAAA' };
    try {
      await signedAnswer(account, challenge, 'approve', '123456');
      return 'signed';
    } catch (e) {
      return e.constructor.name;
    }
  }, created.json.id);
  assert.equal(refusedSign, 'DigestMismatch');
  await answer('deny');
  await dismiss();
});

test('issue11: settings show the device, its key fingerprint and the release', async () => {
  await page.goto(`${srv.url}/app/#settings`);
  const card = page.locator(`section.account[data-device="${deviceId}"]`);
  await card.waitFor();
  const r = await fetch(`${srv.url}/v1/admin/users/alice/devices`, { headers: { Authorization: `Bearer ${srv.adminToken()}` } });
  const listed = (await r.json()).devices.find((d) => d.id === deviceId);
  const raw = Buffer.from(listed.public_key, 'base64url');
  const expected = `SHA256:${createHash('sha256').update(raw).digest('base64').replace(/=+$/, '')}`;
  assert.equal(await card.locator('.fingerprint').textContent(), expected);
  assert.equal(await card.locator('.device-name').textContent(), 'Alice\'s Pixel');
  await page.locator('#notify-state').waitFor();
  await shot('4-settings');
  // Dark mode follows the system.
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(dark, 'rgb(12, 26, 23)');
  await shot('6-settings-dark');
  await page.emulateMedia({ colorScheme: 'light' });
});

test('issue11: over plain HTTP from another host the app refuses to run and says why', async () => {
  // A name that is not loopback to the browser, resolved to pushauthd: not a secure context.
  const port = new URL(srv.url).port;
  const plain = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP push.example.test 127.0.0.1'],
  });
  try {
    const p = await plain.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await p.goto(`http://push.example.test:${port}/enroll?token=abc`);
    const notice = p.locator('#insecure');
    await notice.waitFor();
    assert.match(await notice.textContent(), /needs HTTPS/);
    assert.match(await notice.textContent(), /plain HTTP from push\.example\.test/);
    assert.equal(await p.evaluate(() => window.isSecureContext), false);
    assert.equal(await p.locator('#enroll-form').count(), 0);
  } finally {
    await plain.close();
  }
});

test('issue11: a Web Push wakes the worker: "Login approval requested", and tapping it opens that challenge', async () => {
  await page.goto(`${srv.url}/app/#settings`);
  await page.locator('#notify-state').waitFor();
  // Headless Chromium has no push service: register a subscription made here, through the
  // app's own signing code, pointing at the loopback push service pushauthd is allowed to use.
  const endpoint = `${pushService.origin}/push/${Date.now()}`;
  const registered = await page.evaluate(async (endpoint) => {
    const { listAccounts } = await import('/app/keystore.js');
    const { registerSubscription } = await import('/app/push.js');
    const { b64url } = await import('/app/bytes.js');
    const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
    const p256dh = b64url(await crypto.subtle.exportKey('raw', pair.publicKey));
    const auth = b64url(crypto.getRandomValues(new Uint8Array(16)));
    const [account] = await listAccounts();
    return registerSubscription(account, { endpoint, keys: { p256dh, auth } });
  }, endpoint);
  assert.ok(registered, 'the signed PUT was accepted');
  const before = pushService.received.length;
  const login = srv.push('alice');
  await login.code;
  const sent = await pushService.count(before + 1);
  assert.equal(sent.path, new URL(endpoint).pathname);
  assert.equal(sent.headers['content-encoding'], 'aes128gcm');
  const id = await page.evaluate(async () => {
    const { listAccounts } = await import('/app/keystore.js');
    const { deviceRequest } = await import('/app/api.js');
    const [account] = await listAccounts();
    const list = await deviceRequest(account, 'GET', '/v1/device/challenges');
    return list.challenges[0].id;
  });
  // The push the service would deliver, handed to the worker through the DevTools protocol.
  const cdp = await context.newCDPSession(page);
  const registrations = [];
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
  await cdp.send('ServiceWorker.enable');
  const deadline = Date.now() + 5000;
  while (!registrations.some((r) => !r.isDeleted) && Date.now() < deadline) await page.waitForTimeout(100);
  const registration = registrations.find((r) => !r.isDeleted && r.scopeURL.startsWith(srv.url));
  assert.ok(registration, JSON.stringify(registrations));
  let shown = [];
  // A worker that the browser has just stopped may miss one delivery: offer it up to three times.
  for (let attempt = 0; attempt < 3 && shown.length === 0; attempt += 1) {
    await cdp.send('ServiceWorker.deliverPushMessage', {
      origin: srv.url, registrationId: registration.registrationId, data: JSON.stringify({ challenge_id: id }),
    });
    for (let i = 0; i < 30 && shown.length === 0; i += 1) {
      shown = await page.evaluate(async () => {
        const reg = await navigator.serviceWorker.getRegistration();
        return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }));
      });
      if (shown.length === 0) await page.waitForTimeout(100);
    }
  }
  assert.equal(shown.length, 1, JSON.stringify(shown));
  assert.equal(shown[0].title, 'Login approval requested');
  assert.equal(shown[0].tag, `challenge-${id}`);
  // Nothing of the login on the lock screen.
  assert.doesNotMatch(`${shown[0].title} ${shown[0].body}`, /alice|vm|pushauthd-push|Test push/);
  // Tapping it: headless Chromium has no notification to tap, so the worker is handed the
  // notificationclick event its own notification would get, dispatched inside the worker.
  const worker = context.serviceWorkers().find((w) => w.url().endsWith('/app/sw.js'));
  assert.ok(worker, 'the app\'s service worker runs');
  await worker.evaluate(async () => {
    const [notification] = await self.registration.getNotifications();
    self.dispatchEvent(new NotificationEvent('notificationclick', { notification }));
  });
  await page.waitForURL(`${srv.url}/app/#challenge=${id}`);
  const card = page.locator(`article.challenge.focus[data-id="${id}"]`);
  await card.waitFor({ state: 'visible' });
  assert.equal(await page.locator('#settings').isHidden(), true);
  await answer('deny');
  await dismiss();
  await login.done;
});

test('issue11: with pushauthd stopped, the app still opens and says it is offline', async () => {
  // The worker must have installed the release first (h5's signed cache).
  await page.goto(`${srv.url}/app/`);
  await page.waitForFunction(async () => {
    const { releaseInfo } = await import('/app/release.js');
    return (await releaseInfo()).installed;
  }, null, { timeout: 20000 });
  await srv.stop();
  await page.reload();
  const banner = page.locator('#banner');
  await banner.waitFor({ state: 'visible', timeout: 15000 });
  assert.match(await banner.textContent(), /Offline: pushauth cannot reach localhost:\d+\. It cannot show or answer login requests/);
  assert.equal(await page.locator('header.top .brand').isVisible(), true);
  await shot('5-offline');
  await srv.serve();
  await banner.waitFor({ state: 'hidden', timeout: 40000 });
});

test('issue11: removing this device revokes it on the server, audited as by itself', async () => {
  await page.goto(`${srv.url}/app/#settings`);
  const card = page.locator(`section.account[data-device="${deviceId}"]`);
  await card.getByRole('button', { name: 'Remove this device' }).tap();
  await card.getByRole('button', { name: 'Yes, remove it' }).tap();
  await page.locator('#welcome').waitFor();
  const row = devices('alice').find((d) => d.id === deviceId);
  assert.match(row.status, /^revoked /);
  assert.match(srv.audit('alice'), new RegExp(`revoked.*${deviceId}.*by self|${deviceId}.*revoked.*by self`));
  // Gone from the app too: a reload shows no account.
  await page.reload();
  await page.locator('#welcome').waitFor();
});
