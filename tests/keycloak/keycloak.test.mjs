// Keycloak with the pushauth provider, end to end: password login, then the push page, answered
// with the real device CLI; enrollment through the required action; CIBA through the sidecar's
// HTTP authentication channel. Services are started by run.sh; this file sets up the realm
// through the admin REST API and drives headless Chromium with playwright-core.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const KC = process.env.KC_URL;
const PUSHAUTHD = process.env.PUSHAUTHD_URL;
const BIN = process.env.PUSHAUTH_BIN;
const RUN = process.env.E2E_RUN;
const ART = process.env.E2E_ARTIFACTS;
const REALM = 'pushauth-e2e';
const REALM2 = 'pushauth-e2e-2'; // mapped to "pushauth-e2e-2/<name>", no bootstrap
const SIDECAR = process.env.SIDECAR_URL;
let REDIRECT; // the app's callback: a local HTTP server that records what it is sent
const appHits = [];
const PASSWORD = 'correct horse battery staple';
const CIBA_SECRET = 'ciba-client-secret-0123456789';

let browser;
let adminToken;
let appServer;

// ------------------------------------------------------------------ helpers

async function kcAdminToken() {
  const r = await fetch(`${KC}/realms/master/protocol/openid-connect/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', client_id: 'admin-cli', username: 'admin', password: 'admin' }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return JSON.parse(text).access_token;
}

async function kc(method, path, body, retried = false) {
  const r = await fetch(`${KC}/admin${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status === 401 && !retried) { // the admin token lives a minute: get a fresh one
    adminToken = await kcAdminToken();
    return kc(method, path, body, true);
  }
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The device CLI, with one config dir per simulated phone. */
function device(name, ...args) {
  return execFileSync(join(BIN, 'pushauth-device'), args, {
    env: { ...process.env, PUSHAUTH_DEVICE_DIR: join(RUN, 'devices', name) },
    encoding: 'utf8',
    timeout: 60000,
  });
}

/** Waits on the device for the one pending challenge and returns it. */
function pendingOn(name) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const list = JSON.parse(device(name, 'pending', '--json', '--wait', '10'));
    const items = Array.isArray(list) ? list : list.challenges;
    if (items && items.length > 0) return items[0];
  }
  throw new Error(`no challenge reached ${name}`);
}

async function pushauthdEnrollmentLink(user) {
  const token = readFileSync(join(RUN, 'admin-token'), 'utf8').trim();
  const r = await fetch(`${PUSHAUTHD}/v1/admin/enrollments`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  const text = await r.text();
  assert.equal(r.status, 201, text);
  return JSON.parse(text).url;
}

/** pushauthd's active devices of `user` (or, with `all`, every device ever bound), as the admin sees them. */
async function pushauthdDevices(user, all = false) {
  const token = readFileSync(join(RUN, 'admin-token'), 'utf8').trim();
  const r = await fetch(`${PUSHAUTHD}/v1/admin/users/${encodeURIComponent(user)}/devices${all ? '?all=true' : ''}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const text = await r.text();
  if (r.status === 404) return [];
  assert.equal(r.status, 200, text);
  return JSON.parse(text).devices;
}

/** A login's state as the sidecar holds it (the shim's view). */
async function sidecarLogin(id) {
  const secret = readFileSync(join(RUN, 'sidecar-secret'), 'utf8').trim();
  const r = await fetch(`${SIDECAR}/v1/logins/${encodeURIComponent(id)}`, { headers: { Authorization: `Bearer ${secret}` } });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return JSON.parse(text);
}

/** A code of the same length that is not `code`: each digit moved by one. */
function shifted(code) {
  return [...code].map((d) => String((Number(d) + 1) % 10)).join('');
}

/** The code box shows `code` large, in two groups of digits on one line, within `width` px. */
async function assertGroupedCode(box, code, width = undefined) {
  const groups = await box.locator('.pushauth-code-group').allTextContents();
  assert.deepEqual(groups, [code.slice(0, Math.ceil(code.length / 2)), code.slice(Math.ceil(code.length / 2))]);
  const style = await box.evaluate((el) => {
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    const spans = [...el.querySelectorAll('.pushauth-code-group')].map((g) => g.getBoundingClientRect());
    return { size: parseFloat(s.fontSize), top: spans.map((g) => g.top), right: Math.max(...spans.map((g) => g.right)), left: r.left };
  });
  assert.ok(style.size >= 32, `the code is large: ${style.size}px`);
  assert.equal(new Set(style.top).size, 1, 'both groups on one line');
  if (width !== undefined) assert.ok(style.right <= width, `the code fits a ${width} px screen: ${style.right}`);
}

/** Every open challenge on a device, without waiting. */
function openOn(name) {
  const list = JSON.parse(device(name, 'pending', '--json', '--wait', '0'));
  return Array.isArray(list) ? list : (list.challenges ?? []);
}

/** Enrolls a phone for `user` on pushauthd (as an admin would) and returns its device id. */
async function enrollPhone(user, name) {
  mkdirSync(join(RUN, 'devices', name), { recursive: true });
  device(name, 'enroll', await pushauthdEnrollmentLink(user), '--name', name);
  return name;
}

function authUrl(state, realm = REALM, clientId = 'app') {
  const q = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, state });
  return `${KC}/realms/${realm}/protocol/openid-connect/auth?${q}`;
}

/** A fresh browser context whose redirect to the app is answered locally and recorded. */
async function newPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const start = appHits.length;
  const redirects = { get length() { return appHits.length - start; }, at: (i) => appHits.slice(start).at(i) };
  return { context, page, redirects };
}

async function passwordStep(page, user, state, realm = REALM, clientId = 'app') {
  await page.goto(authUrl(state, realm, clientId));
  await page.fill('#username', user);
  await page.fill('#password', PASSWORD);
  await page.click('#kc-login');
}

async function waitForRedirect(page, redirects) {
  await page.waitForURL((u) => u.toString().startsWith(REDIRECT), { timeout: 60000 });
  return new URL(redirects.at(-1) ?? page.url());
}

async function userId(username, realm = REALM) {
  const users = await kc('GET', `/realms/${realm}/users?exact=true&username=${encodeURIComponent(username)}`);
  return users[0].id;
}

async function events(type, username) {
  const id = await userId(username);
  return kc('GET', `/realms/${REALM}/events?type=${type}&user=${id}`);
}

/** A copy of the browser flow with "Push approval" after username and password, bound as the
 *  realm's browser flow, and the enrollment required action enabled. */
async function pushFlow(realm) {
  await kc('POST', `/realms/${realm}/authentication/flows/browser/copy`, { newName: 'push browser' });
  const executions = await kc('GET', `/realms/${realm}/authentication/flows/${encodeURIComponent('push browser')}/executions`);
  const forms = executions.find((e) => e.authenticationFlow && /forms/i.test(e.displayName));
  assert.ok(forms, `no forms subflow in ${JSON.stringify(executions.map((e) => e.displayName))}`);
  await kc('POST', `/realms/${realm}/authentication/flows/${encodeURIComponent(forms.displayName)}/executions/execution`, { provider: 'pushauth' });
  const after = await kc('GET', `/realms/${realm}/authentication/flows/${encodeURIComponent('push browser')}/executions`);
  const push = after.find((e) => e.providerId === 'pushauth');
  assert.ok(push, 'the push step was not added');
  push.requirement = 'REQUIRED';
  await kc('PUT', `/realms/${realm}/authentication/flows/${encodeURIComponent('push browser')}/executions`, push);
  const current = await kc('GET', `/realms/${realm}`);
  await kc('PUT', `/realms/${realm}`, { ...current, browserFlow: 'push browser' });
  const unregistered = await kc('GET', `/realms/${realm}/authentication/unregistered-required-actions`);
  if (unregistered.some((a) => a.providerId === 'pushauth-enroll')) {
    await kc('POST', `/realms/${realm}/authentication/register-required-action`, { providerId: 'pushauth-enroll', name: 'Enroll a push device' });
  }
  const action = await kc('GET', `/realms/${realm}/authentication/required-actions/pushauth-enroll`);
  assert.equal(action.enabled, true);
  // "Get new backup codes", which the account console starts (kc_action=pushauth-backup-codes).
  if (unregistered.some((a) => a.providerId === 'pushauth-backup-codes')) {
    await kc('POST', `/realms/${realm}/authentication/register-required-action`, { providerId: 'pushauth-backup-codes', name: 'Get new backup codes' });
  }
  const codes = await kc('GET', `/realms/${realm}/authentication/required-actions/pushauth-backup-codes`);
  assert.equal(codes.enabled, true);
}

// ------------------------------------------------------------------ setup

before(async () => {
  mkdirSync(ART, { recursive: true });
  appServer = createServer((req, res) => {
    if (req.url.startsWith('/callback')) appHits.push(`${REDIRECT.replace(/\/callback$/, '')}${req.url}`);
    res.writeHead(200, { 'Content-Type': 'text/html' }).end('<h1>app</h1>');
  });
  await new Promise((res) => appServer.listen(0, '127.0.0.1', res));
  REDIRECT = `http://127.0.0.1:${appServer.address().port}/callback`;
  adminToken = await kcAdminToken();
  // Alice, Bob, Dave and Erin have phones enrolled in pushauthd by the administrator (for SSH):
  // Keycloak holds no credential for them; Carol has no device.
  await enrollPhone('alice', 'alice-phone');
  await enrollPhone('bob', 'bob-phone');
  await enrollPhone('dave', 'dave-phone');
  await enrollPhone('erin', 'erin-phone');
  await enrollPhone('frank', 'frank-phone');
  await enrollPhone('gina', 'gina-phone');
  const user = (username) => ({
    username, enabled: true, email: `${username}@example.org`, emailVerified: true,
    firstName: username, lastName: 'Tester',
    credentials: [{ type: 'password', value: PASSWORD, temporary: false }],
    // Users imported with the realm get no default roles; the account console needs them.
    clientRoles: { account: ['manage-account', 'view-profile'] },
  });
  await kc('POST', '/realms', {
    realm: REALM,
    enabled: true,
    eventsEnabled: true,
    attributes: { cibaBackchannelTokenDeliveryMode: 'poll', cibaExpiresIn: '120', cibaInterval: '1', cibaAuthRequestedUserHint: 'login_hint' },
    users: ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina'].map(user),
    clients: [
      { clientId: 'app', publicClient: true, standardFlowEnabled: true, redirectUris: [`${REDIRECT}*`], webOrigins: ['+'] },
      {
        clientId: 'ciba-app', publicClient: false, secret: CIBA_SECRET, standardFlowEnabled: false,
        attributes: { 'oidc.ciba.grant.enabled': 'true' },
      },
    ],
  });
  await pushFlow(REALM);
  // A client still on the built-in browser flow (password only: a realm rolling out push),
  // for the "password alone reaches the enrollment" scenario.
  const flows = await kc('GET', `/realms/${REALM}/authentication/flows`);
  const plain = flows.find((f) => f.alias === 'browser');
  await kc('POST', `/realms/${REALM}/clients`, {
    clientId: 'rollout-app', publicClient: true, standardFlowEnabled: true, redirectUris: [`${REDIRECT}*`],
    authenticationFlowBindingOverrides: { browser: plain.id },
  });
  // A second realm, with its own alice (same password), mapped to "pushauth-e2e-2/alice".
  await kc('POST', '/realms', {
    realm: REALM2,
    enabled: true,
    eventsEnabled: true,
    users: [user('alice')],
    clients: [{ clientId: 'app', publicClient: true, standardFlowEnabled: true, redirectUris: [`${REDIRECT}*`], webOrigins: ['+'] }],
  });
  await pushFlow(REALM2);

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  appServer?.close();
});

// ------------------------------------------------------------------ cases

test('a password login waits for the push, and approving it with the shown code logs in', async () => {
  const { context, page, redirects } = await newPage();
  await passwordStep(page, 'alice', 'state-approve');
  const codeBox = page.locator('#pushauth-code');
  await codeBox.waitFor({ timeout: 30000 });
  const code = (await codeBox.textContent()).trim();
  // Six digits (pushauthd's default code_digits), shown large in two groups ("482 913") whose
  // text is the digits alone, so what a person copies is the code.
  assert.match(code, /^\d{6}$/);
  await assertGroupedCode(codeBox, code);
  assert.match(await page.locator('#pushauth-devices').textContent(), /alice-phone/);
  await page.screenshot({ path: join(ART, 'push-page.png') });
  // On a phone-sized screen the code still fits on one line.
  await page.setViewportSize({ width: 390, height: 844 });
  await assertGroupedCode(codeBox, code, 390);
  await page.screenshot({ path: join(ART, 'push-page-phone.png') });

  const challenge = pendingOn('alice-phone');
  assert.equal(challenge.context.realm, REALM);
  assert.equal(challenge.context.client, 'app');
  assert.equal(challenge.code_required, true);
  // Still waiting: no authorization code was issued before the device answered.
  assert.equal(redirects.length, 0);
  device('alice-phone', 'approve', '--code', code, '--', challenge.id);

  const landed = await waitForRedirect(page, redirects);
  assert.ok(landed.searchParams.get('code'), `no authorization code in ${landed}`);
  assert.equal(landed.searchParams.get('state'), 'state-approve');
  const logins = await events('LOGIN', 'alice');
  assert.ok(logins.some((e) => e.clientId === 'app'), `no LOGIN event: ${JSON.stringify(logins)}`);
  await context.close();
});

test('a denied push shows a failure and issues no code', async () => {
  const { context, page, redirects } = await newPage();
  await passwordStep(page, 'bob', 'state-deny');
  await page.locator('#pushauth-code').waitFor({ timeout: 30000 });
  const challenge = pendingOn('bob-phone');
  device('bob-phone', 'deny', '--', challenge.id);
  const alert = page.getByText('The login was denied on your device.');
  await alert.waitFor({ timeout: 30000 });
  await page.screenshot({ path: join(ART, 'push-denied.png') });
  assert.equal(await page.locator('#pushauth-resend').count(), 1);
  // Give a stray redirect the chance to happen: there must be none.
  await page.waitForTimeout(1500);
  assert.equal(redirects.length, 0);
  assert.ok(!page.url().startsWith(REDIRECT));
  const errors = await events('LOGIN_ERROR', 'bob');
  assert.ok(errors.length >= 1, 'no LOGIN_ERROR event');
  await context.close();
});

test('a wrong code on the device fails the push; "Send again" starts a new one that approves', async () => {
  const { context, page, redirects } = await newPage();
  await passwordStep(page, 'bob', 'state-resend');
  const codeBox = page.locator('#pushauth-code');
  await codeBox.waitFor({ timeout: 30000 });
  const code = (await codeBox.textContent()).trim();
  const wrong = shifted(code);
  const first = pendingOn('bob-phone');
  device('bob-phone', 'approve', '--code', wrong, '--', first.id);
  await page.getByText('The code typed on the device did not match.').waitFor({ timeout: 30000 });
  assert.equal(redirects.length, 0);

  await page.click('#pushauth-resend');
  await codeBox.waitFor({ timeout: 30000 });
  const second = pendingOn('bob-phone');
  assert.notEqual(second.id, first.id);
  device('bob-phone', 'approve', '--code', (await codeBox.textContent()).trim(), '--', second.id);
  const landed = await waitForRedirect(page, redirects);
  assert.ok(landed.searchParams.get('code'));
  assert.equal(landed.searchParams.get('state'), 'state-resend');
  await context.close();
});

test('a user without a device enrolls through the required action, then logs in by push', async () => {
  {
    const { context, page, redirects } = await newPage();
    await passwordStep(page, 'carol', 'state-enroll');
    const link = page.locator('#pushauth-enroll-url');
    await link.waitFor({ timeout: 30000 });
    const url = (await link.textContent()).trim();
    assert.match(url, /\/enroll\?token=/);
    assert.equal(await page.locator('#pushauth-enroll-qr').count(), 1);
    // The wording is true for the web authenticator the QR code opens (issue 11), and the
    // link stays visible for the CLI device.
    const body = await page.locator('body').innerText();
    assert.match(body, /Scan this QR code with your phone's camera\. It opens the pushauth web app in your browser/);
    assert.match(body, /pushauth-device enroll/);
    assert.ok(await link.isVisible());
    await page.screenshot({ path: join(ART, 'enroll-page.png') });
    mkdirSync(join(RUN, 'devices', 'carol-phone'), { recursive: true });
    device('carol-phone', 'enroll', url, '--name', 'carol-phone');
    const landed = await waitForRedirect(page, redirects);
    assert.ok(landed.searchParams.get('code'));
    const creds = await kc('GET', `/realms/${REALM}/users/${await userId('carol')}/credentials`);
    const push = creds.find((c) => c.type === 'pushauth-device');
    assert.ok(push, `no push credential: ${JSON.stringify(creds)}`);
    assert.equal(push.userLabel, 'carol-phone');
    await context.close();
  }
  {
    const { context, page, redirects } = await newPage();
    await passwordStep(page, 'carol', 'state-after-enroll');
    const codeBox = page.locator('#pushauth-code');
    await codeBox.waitFor({ timeout: 30000 });
    const code = (await codeBox.textContent()).trim();
    const challenge = pendingOn('carol-phone');
    device('carol-phone', 'approve', '--code', code, '--', challenge.id);
    const landed = await waitForRedirect(page, redirects);
    assert.ok(landed.searchParams.get('code'));
    await context.close();
  }
});

const cibaClient = { client_id: 'ciba-app', client_secret: CIBA_SECRET };

async function cibaStart(user, message) {
  const r = await fetch(`${KC}/realms/${REALM}/protocol/openid-connect/ext/ciba/auth`, {
    method: 'POST',
    body: new URLSearchParams({ ...cibaClient, scope: 'openid', login_hint: user, binding_message: message }),
  });
  const started = await r.json();
  assert.equal(r.status, 200, JSON.stringify(started));
  assert.ok(started.auth_req_id);
  return started.auth_req_id;
}

async function cibaToken(authReqId) {
  const t = await fetch(`${KC}/realms/${REALM}/protocol/openid-connect/token`, {
    method: 'POST',
    body: new URLSearchParams({ ...cibaClient, grant_type: 'urn:openid:params:grant-type:ciba', auth_req_id: authReqId }),
  });
  return { status: t.status, body: await t.json() };
}

/** Polls the token endpoint until it stops saying "pending". */
async function cibaOutcome(authReqId) {
  const deadline = Date.now() + 30000;
  let last;
  while (Date.now() < deadline) {
    last = await cibaToken(authReqId);
    if (!['authorization_pending', 'slow_down'].includes(last.body.error)) return last;
    await new Promise((res) => setTimeout(res, 1000));
  }
  return last;
}

test('a CIBA backchannel authentication approved on the device yields tokens', async () => {
  const authReqId = await cibaStart('alice', 'Pay-10-EUR');
  const early = await cibaToken(authReqId);
  assert.equal(early.body.error, 'authorization_pending', JSON.stringify(early.body));

  const challenge = pendingOn('alice-phone');
  assert.equal(challenge.context.service, 'keycloak-ciba');
  assert.equal(challenge.context.message, 'Pay-10-EUR');
  assert.equal(challenge.code_required, false);
  device('alice-phone', 'approve', '--', challenge.id);

  const last = await cibaOutcome(authReqId);
  assert.equal(last.status, 200, JSON.stringify(last.body));
  assert.ok(last.body.access_token);
  assert.ok(last.body.id_token);
});

test('a CIBA backchannel authentication denied on the device yields no tokens', async () => {
  const authReqId = await cibaStart('alice', 'Pay-99-EUR');
  const challenge = pendingOn('alice-phone');
  assert.equal(challenge.context.message, 'Pay-99-EUR');
  device('alice-phone', 'deny', '--', challenge.id);
  const last = await cibaOutcome(authReqId);
  assert.equal(last.status, 400, JSON.stringify(last.body));
  assert.equal(last.body.error, 'access_denied', JSON.stringify(last.body));
  assert.equal(last.body.access_token, undefined);
});

// ------------------------------------------------------------------ issue 9

test('issue9 item1: a user whose only device was enrolled for SSH gets the push, never the enrollment page', async () => {
  // dave has a phone in pushauthd and no credential in Keycloak: the old provider decided
  // "not configured" from Keycloak alone and offered the enrollment link after the password.
  const { context, page, redirects } = await newPage();
  await passwordStep(page, 'dave', 'state-dave');
  const codeBox = page.locator('#pushauth-code');
  await codeBox.waitFor({ timeout: 30000 });
  assert.equal(await page.locator('#pushauth-enroll-url').count(), 0);
  const challenge = pendingOn('dave-phone');
  assert.notEqual(challenge.context.action, 'add_device');
  device('dave-phone', 'approve', '--code', (await codeBox.textContent()).trim(), '--', challenge.id);
  const landed = await waitForRedirect(page, redirects);
  assert.ok(landed.searchParams.get('code'));
  assert.equal((await pushauthdDevices('dave')).length, 1);
  await context.close();
});

test('issue9 item1: after the password alone, adding a device needs the existing device to approve', async () => {
  // A client still on the password-only flow, and the enrollment action set on alice (a realm
  // rolling out push): the password alone reaches "Enroll a push device".
  const aliceId = await userId('alice');
  const alice = await kc('GET', `/realms/${REALM}/users/${aliceId}`);
  await kc('PUT', `/realms/${REALM}/users/${aliceId}`, { ...alice, requiredActions: ['pushauth-enroll'] });
  const before = await pushauthdDevices('alice');
  assert.equal(before.length, 1);

  const { context, page, redirects } = await newPage();
  await passwordStep(page, 'alice', 'state-takeover', REALM, 'rollout-app');
  const approvalCode = page.locator('#pushauth-enroll-code');
  await approvalCode.waitFor({ timeout: 30000 });
  assert.equal(await page.locator('#pushauth-enroll-url').count(), 0, 'a link before the existing device approved');
  await page.screenshot({ path: join(ART, 'enroll-approval.png') });
  const ask = pendingOn('alice-phone');
  assert.equal(ask.context.action, 'add_device');
  assert.equal(ask.code_required, true);
  // The owner did not ask for this: deny.
  device('alice-phone', 'deny', '--', ask.id);
  await page.getByText('Adding a device was not approved on your existing device').waitFor({ timeout: 30000 });
  assert.equal(await page.locator('#pushauth-enroll-url').count(), 0);
  await page.waitForTimeout(1500);
  assert.equal(redirects.length, 0);
  assert.deepEqual((await pushauthdDevices('alice')).map((d) => d.id), before.map((d) => d.id), 'a device was added');

  // Now the owner approves, typing the code shown: the link comes and enrollment proceeds.
  await page.click('#pushauth-enroll-restart');
  await approvalCode.waitFor({ timeout: 30000 });
  const again = pendingOn('alice-phone');
  assert.notEqual(again.id, ask.id);
  device('alice-phone', 'approve', '--code', (await approvalCode.textContent()).trim(), '--', again.id);
  const link = page.locator('#pushauth-enroll-url');
  await link.waitFor({ timeout: 30000 });
  mkdirSync(join(RUN, 'devices', 'alice-laptop'), { recursive: true });
  device('alice-laptop', 'enroll', (await link.textContent()).trim(), '--name', 'alice-laptop');
  const landed = await waitForRedirect(page, redirects);
  assert.ok(landed.searchParams.get('code'));
  const after = await pushauthdDevices('alice');
  assert.equal(after.length, 2);
  assert.ok(after.some((d) => d.name === 'alice-laptop'));
  const creds = await kc('GET', `/realms/${REALM}/users/${aliceId}/credentials`);
  assert.ok(creds.some((c) => c.type === 'pushauth-device' && c.userLabel === 'alice-laptop'), JSON.stringify(creds));
  await context.close();
});

test('issue9 item1: a second realm\'s alice never reaches pushauthd\'s alice and cannot enroll without bootstrap', async () => {
  const { context, page, redirects } = await newPage();
  await passwordStep(page, 'alice', 'state-realm2', REALM2);
  // realm 2's alice is "pushauth-e2e-2/alice", who has no device: no push to alice's phone, and
  // with bootstrap off in that realm, no enrollment link either.
  await page.getByText('can only be enrolled by an administrator').waitFor({ timeout: 30000 });
  await page.screenshot({ path: join(ART, 'enroll-needs-admin.png') });
  assert.equal(await page.locator('#pushauth-enroll-url').count(), 0);
  assert.equal(await page.locator('#pushauth-code').count(), 0);
  assert.equal(openOn('alice-phone').length, 0, 'a push reached pushauthd alice');
  assert.equal((await pushauthdDevices('pushauth-e2e-2/alice', true)).length, 0);
  await page.waitForTimeout(1000);
  assert.equal(redirects.length, 0);
  await context.close();
});

test('issue9 item13: reloading the push page cancels the earlier push instead of opening another', async () => {
  const { context, page, redirects } = await newPage();
  await passwordStep(page, 'bob', 'state-reload');
  const codeBox = page.locator('#pushauth-code');
  await codeBox.waitFor({ timeout: 30000 });
  const first = pendingOn('bob-phone');
  // Enter the step again, as a reload or "back" does.
  await page.goto(page.url());
  await codeBox.waitFor({ timeout: 30000 });
  let open = [];
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    open = openOn('bob-phone');
    if (open.length === 1 && open[0].id !== first.id) break;
    await new Promise((res) => setTimeout(res, 300));
  }
  assert.equal(open.length, 1, `open challenges: ${JSON.stringify(open.map((c) => c.id))}`);
  assert.notEqual(open[0].id, first.id);
  assert.equal((await sidecarLogin(first.id)).state, 'cancelled');
  device('bob-phone', 'approve', '--code', (await codeBox.textContent()).trim(), '--', open[0].id);
  const landed = await waitForRedirect(page, redirects);
  assert.ok(landed.searchParams.get('code'));
  await context.close();
});

test('issue9 item3: removing the push device in the account console revokes it in pushauthd', async () => {
  const { context, page } = await newPage();
  // Sign in to the account console (with the push: erin's phone approves).
  await page.goto(`${KC}/realms/${REALM}/account/`);
  await page.fill('#username', 'erin');
  await page.fill('#password', PASSWORD);
  await page.click('#kc-login');
  const codeBox = page.locator('#pushauth-code');
  await codeBox.waitFor({ timeout: 30000 });
  const challenge = pendingOn('erin-phone');
  device('erin-phone', 'approve', '--code', (await codeBox.textContent()).trim(), '--', challenge.id);
  await page.waitForURL((u) => u.toString().startsWith(`${KC}/realms/${REALM}/account`), { timeout: 30000 });
  const [phone] = await pushauthdDevices('erin');
  assert.ok(phone, 'erin has a device');

  // Account security → Signing in: the push device is listed (recorded when it approved the
  // login); its Delete button hands over to Keycloak's "delete credential" step.
  await page.goto(`${KC}/realms/${REALM}/account/account-security/signing-in`);
  try {
    await page.getByText('erin-phone').first().waitFor({ timeout: 30000 });
  } catch (e) {
    await page.screenshot({ path: join(ART, 'account-signing-in-failed.png'), fullPage: true });
    throw new Error(`${e.message}\npage text: ${await page.locator('body').innerText()}`);
  }
  await page.screenshot({ path: join(ART, 'account-signing-in.png') });
  const rows = page.locator('li').filter({ hasText: 'erin-phone' }).locator('[data-testrole="remove"]');
  const remove = (await rows.count()) > 0 ? rows.last() : page.locator('[data-testrole="remove"]').last();
  await remove.click();
  let active = [phone];
  const deadline = Date.now() + 45000;
  while (Date.now() < deadline && active.length > 0) {
    if (await page.locator('#kc-accept').count() > 0) {
      await page.screenshot({ path: join(ART, 'account-confirm-delete.png') });
      await page.click('#kc-accept').catch(() => {});
    } else if (await page.locator('#password').count() > 0) { // Keycloak may ask to sign in again
      if (await page.locator('#username').count() > 0) await page.fill('#username', 'erin').catch(() => {});
      await page.fill('#password', PASSWORD).catch(() => {});
      await page.click('#kc-login').catch(() => {});
    } else if (await page.locator('#pushauth-code').count() > 0) {
      const again = openOn('erin-phone');
      if (again.length > 0) {
        const code = (await page.locator('#pushauth-code').textContent()).trim();
        device('erin-phone', 'approve', '--code', code, '--', again[0].id);
      }
    }
    await new Promise((res) => setTimeout(res, 700));
    active = await pushauthdDevices('erin');
  }
  await page.screenshot({ path: join(ART, 'account-removed.png') });
  assert.equal(active.length, 0, 'the device is still active in pushauthd');
  const all = await pushauthdDevices('erin', true);
  const record = all.find((d) => d.id === phone.id);
  assert.ok(record && record.revoked_at, `no revoked record: ${JSON.stringify(all)}`);
  await context.close();

  // The next push login has no device. Whoever removed it (with erin's password alone) must not
  // enroll their own phone now: a user whose devices were all revoked is re-enrolled by the
  // administrator only, so no push and no enrollment link.
  const next = await newPage();
  await passwordStep(next.page, 'erin', 'state-after-revoke');
  await next.page.getByText('can only be enrolled by an administrator').waitFor({ timeout: 30000 });
  assert.equal(await next.page.locator('#pushauth-code').count(), 0);
  assert.equal(await next.page.locator('#pushauth-enroll-url').count(), 0);
  // The removed phone itself is refused by pushauthd now.
  assert.throws(() => openOn('erin-phone'), /device_revoked/);
  await next.context.close();
});

test('issue9 item3: an administrator removing the push credential revokes the device too', async () => {
  // dave's phone approved a login earlier, so Keycloak lists it as his credential.
  const daveId = await userId('dave');
  const creds = await kc('GET', `/realms/${REALM}/users/${daveId}/credentials`);
  const push = creds.find((c) => c.type === 'pushauth-device' && c.userLabel === 'dave-phone');
  assert.ok(push, `no push credential: ${JSON.stringify(creds)}`);
  const [phone] = await pushauthdDevices('dave');
  assert.ok(phone);
  await kc('DELETE', `/realms/${REALM}/users/${daveId}/credentials/${push.id}`);
  let active = [phone];
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline && active.length > 0) {
    await new Promise((res) => setTimeout(res, 300));
    active = await pushauthdDevices('dave');
  }
  assert.equal(active.length, 0, 'the device is still active in pushauthd');
});

test('issue11: ten wrong codes in a row pause pushes to the user; the page says so; an admin unlock lets the next login through', async () => {
  const token = readFileSync(join(RUN, 'admin-token'), 'utf8').trim();
  const admin = (method, path, body) => fetch(`${PUSHAUTHD}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // Ten pushes over ten challenges (each from its own address, so only the code lock decides),
  // each answered on frank's phone with a wrong code of the right length.
  for (let i = 0; i < 10; i++) {
    const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
    const r = await admin('POST', '/v1/challenges', {
      user: 'frank', rp_nonce: nonce, context: { service: 'sshd', host: 'web01', rhost: `198.51.100.${i}` },
    });
    const created = JSON.parse(await r.text());
    assert.equal(r.status, 201, JSON.stringify(created));
    assert.match(created.code, /^\d{6}$/);
    const out = device('frank-phone', 'approve', '--code', shifted(created.code), '--', created.id);
    assert.match(out, /code_mismatch/);
  }
  {
    const { context, page, redirects } = await newPage();
    await passwordStep(page, 'frank', 'state-locked');
    await page.getByText('Pushes to your account are paused').waitFor({ timeout: 30000 });
    assert.equal(await page.locator('#pushauth-code').count(), 0);
    assert.equal(openOn('frank-phone').length, 0, 'no push reached the phone');
    await page.screenshot({ path: join(ART, 'push-locked.png') });
    assert.equal(redirects.length, 0);
    await context.close();
  }
  const r = await admin('POST', '/v1/admin/users/frank/unlock');
  assert.equal(r.status, 200, await r.text());
  {
    const { context, page, redirects } = await newPage();
    await passwordStep(page, 'frank', 'state-unlocked');
    const codeBox = page.locator('#pushauth-code');
    await codeBox.waitFor({ timeout: 30000 });
    const challenge = pendingOn('frank-phone');
    device('frank-phone', 'approve', '--code', (await codeBox.textContent()).trim(), '--', challenge.id);
    const landed = await waitForRedirect(page, redirects);
    assert.equal(landed.searchParams.get('state'), 'state-unlocked');
    await context.close();
  }
});

// ------------------------------------------------------------------ issue 12: backup codes

let ginaCodes = []; // the set issued from the account console, used by the tests after it

/** Signs `user` in to the account console, the push approved on `phone`. */
async function accountConsole(page, user, phone) {
  await page.goto(`${KC}/realms/${REALM}/account/`);
  await page.fill('#username', user);
  await page.fill('#password', PASSWORD);
  await page.click('#kc-login');
  const codeBox = page.locator('#pushauth-code');
  await codeBox.waitFor({ timeout: 30000 });
  const challenge = pendingOn(phone);
  device(phone, 'approve', '--code', (await codeBox.textContent()).trim(), '--', challenge.id);
  await page.waitForURL((u) => u.toString().startsWith(`${KC}/realms/${REALM}/account`), { timeout: 30000 });
}

test('issue12: the account console gets a new set of backup codes, approved by a push on the device', async () => {
  const { context, page } = await newPage();
  await accountConsole(page, 'gina', 'gina-phone');
  await page.goto(`${KC}/realms/${REALM}/account/account-security/signing-in`);
  // The console lists the credential type and offers "Set up" (its create action).
  const setUp = page.getByRole('button', { name: /Set up Backup codes/i })
    .or(page.getByRole('link', { name: /Set up Backup codes/i }));
  try {
    await setUp.first().waitFor({ timeout: 30000 });
  } catch (e) {
    await page.screenshot({ path: join(ART, 'backup-codes-console-failed.png'), fullPage: true });
    throw new Error(`${e.message}\npage text: ${await page.locator('body').innerText()}`);
  }
  await page.screenshot({ path: join(ART, 'backup-codes-console.png'), fullPage: true });
  await setUp.first().click();

  // The action pushes "Issue a new set of backup codes?" with number matching.
  const pushCode = page.locator('#pushauth-codes-push-code');
  await pushCode.waitFor({ timeout: 30000 });
  assert.equal(await page.locator('#pushauth-codes-list').count(), 0, 'codes before the device approved');
  const ask = pendingOn('gina-phone');
  assert.equal(ask.context.action, 'issue_backup_codes');
  assert.equal(ask.context.realm, REALM);
  assert.equal(ask.code_required, true);
  await page.screenshot({ path: join(ART, 'backup-codes-approval.png') });
  device('gina-phone', 'approve', '--code', (await pushCode.textContent()).trim(), '--', ask.id);

  const list = page.locator('#pushauth-codes-list');
  await list.waitFor({ timeout: 30000 });
  ginaCodes = (await page.locator('.pushauth-backup-code').allTextContents()).map((c) => c.trim());
  assert.ok(ginaCodes.length >= 10, `codes: ${ginaCodes.length}`);
  assert.equal(new Set(ginaCodes).size, ginaCodes.length, 'codes repeat');
  for (const code of ginaCodes) assert.ok(code.replace(/[^A-Za-z0-9]/g, '').length >= 12, `short code ${code}`);
  const text = await page.locator('body').innerText();
  assert.match(text, /This is the only time they are shown/);
  assert.match(text, /password manager, or print this page/);
  assert.equal(await page.locator('#pushauth-codes-print').count(), 1);
  await page.screenshot({ path: join(ART, 'backup-codes-issued.png'), fullPage: true });
  await page.click('#pushauth-codes-done');
  await page.waitForURL((u) => u.toString().startsWith(`${KC}/realms/${REALM}/account`), { timeout: 30000 });

  // Keycloak records when the set was issued (no secret), and the console now offers "Update".
  const creds = await kc('GET', `/realms/${REALM}/users/${await userId('gina')}/credentials`);
  const record = creds.find((c) => c.type === 'pushauth-backup-codes');
  assert.ok(record, `no backup-codes record: ${JSON.stringify(creds)}`);
  assert.ok(!JSON.stringify(creds).includes(ginaCodes[0]), 'a code is stored in Keycloak');
  await context.close();
});

test('issue12: a backup code instead of the push logs in, shows its replacement once, and is refused the second time', async () => {
  assert.ok(ginaCodes.length >= 3, 'no codes from the account console test');
  let replacement;
  {
    const { context, page, redirects } = await newPage();
    await passwordStep(page, 'gina', 'state-backup');
    await page.locator('#pushauth-code').waitFor({ timeout: 30000 });
    const push = pendingOn('gina-phone');
    // Switching to a backup code cancels the push in flight.
    await page.click('#pushauth-use-backup');
    const input = page.locator('#pushauth-backup-code');
    await input.waitFor({ timeout: 30000 });
    assert.equal((await sidecarLogin(push.id)).state, 'cancelled');
    assert.equal(openOn('gina-phone').length, 0, 'the push is still open on the phone');
    await page.screenshot({ path: join(ART, 'backup-code-form.png') });
    // Typed in lower case: case does not matter.
    await input.fill(ginaCodes[0].toLowerCase());
    await page.click('#pushauth-backup-submit');
    const shown = page.locator('#pushauth-backup-replacement');
    await shown.waitFor({ timeout: 30000 });
    replacement = (await shown.textContent()).trim();
    assert.ok(replacement.replace(/[^A-Za-z0-9]/g, '').length >= 12, `replacement ${replacement}`);
    assert.ok(!ginaCodes.includes(replacement), 'the replacement is an old code');
    assert.match(await page.locator('body').innerText(), /shown only once\. Store it with your other backup codes/);
    assert.equal(redirects.length, 0, 'logged in before the replacement was shown');
    await page.screenshot({ path: join(ART, 'backup-code-replacement.png') });
    await page.click('#pushauth-backup-continue');
    const landed = await waitForRedirect(page, redirects);
    assert.ok(landed.searchParams.get('code'), `no authorization code in ${landed}`);
    assert.equal(landed.searchParams.get('state'), 'state-backup');
    const logins = await events('LOGIN', 'gina');
    assert.ok(logins.some((e) => e.details?.pushauth_result === 'backup_code'), JSON.stringify(logins));
    await context.close();
  }
  {
    // The same code again: refused, with the message; no login. Then a wrong code likewise, and
    // the push can be sent again and approved.
    const { context, page, redirects } = await newPage();
    await passwordStep(page, 'gina', 'state-backup-reused');
    await page.locator('#pushauth-code').waitFor({ timeout: 30000 });
    await page.click('#pushauth-use-backup');
    await page.locator('#pushauth-backup-code').fill(ginaCodes[0]);
    await page.click('#pushauth-backup-submit');
    await page.getByText('That backup code is not valid').waitFor({ timeout: 30000 });
    await page.screenshot({ path: join(ART, 'backup-code-refused.png') });
    await page.locator('#pushauth-backup-code').fill('ZZZZ-ZZZZ-ZZZZ-ZZZZ');
    await page.click('#pushauth-backup-submit');
    await page.getByText('That backup code is not valid').waitFor({ timeout: 30000 });
    await page.waitForTimeout(1000);
    assert.equal(redirects.length, 0);
    const errors = await events('LOGIN_ERROR', 'gina');
    assert.ok(errors.some((e) => e.details?.pushauth_result === 'pushBackupInvalid'), JSON.stringify(errors));
    await page.click('#pushauth-resend');
    const codeBox = page.locator('#pushauth-code');
    await codeBox.waitFor({ timeout: 30000 });
    const push = pendingOn('gina-phone');
    device('gina-phone', 'approve', '--code', (await codeBox.textContent()).trim(), '--', push.id);
    const landed = await waitForRedirect(page, redirects);
    assert.equal(landed.searchParams.get('state'), 'state-backup-reused');
    await context.close();
  }
  ginaCodes = [...ginaCodes.slice(1), replacement];
});

test('issue12: lost phone: a backup code approves adding a device instead of the existing one', async () => {
  assert.ok(ginaCodes.length >= 2, 'no codes left');
  const ginaId = await userId('gina');
  const gina = await kc('GET', `/realms/${REALM}/users/${ginaId}`);
  await kc('PUT', `/realms/${REALM}/users/${ginaId}`, { ...gina, requiredActions: ['pushauth-enroll'] });
  const before = await pushauthdDevices('gina');
  assert.equal(before.length, 1);

  const { context, page, redirects } = await newPage();
  await passwordStep(page, 'gina', 'state-lost-phone', REALM, 'rollout-app');
  await page.locator('#pushauth-enroll-code').waitFor({ timeout: 30000 });
  const ask = pendingOn('gina-phone');
  assert.equal(ask.context.action, 'add_device');
  // "I lost my device": the code goes where the phone's approval would.
  await page.click('#pushauth-enroll-lost');
  const input = page.locator('#pushauth-backup-code');
  await input.waitFor({ timeout: 30000 });
  await page.screenshot({ path: join(ART, 'enroll-lost-phone.png') });
  // A wrong code first: refused, no link.
  await input.fill('ZZZZ-ZZZZ-ZZZZ-ZZZZ');
  await page.click('#pushauth-backup-submit');
  await page.getByText('That backup code is not valid').waitFor({ timeout: 30000 });
  assert.equal(await page.locator('#pushauth-enroll-url').count(), 0);
  await page.locator('#pushauth-backup-code').fill(ginaCodes[0]);
  await page.click('#pushauth-backup-submit');
  const shown = page.locator('#pushauth-backup-replacement');
  await shown.waitFor({ timeout: 30000 });
  const replacement = (await shown.textContent()).trim();
  assert.ok(replacement.replace(/[^A-Za-z0-9]/g, '').length >= 12, `replacement ${replacement}`);
  assert.ok(!ginaCodes.includes(replacement));
  assert.equal(await page.locator('#pushauth-enroll-url').count(), 0, 'the link before the replacement was acknowledged');
  // The approval push to the lost phone is withdrawn.
  assert.equal(openOn('gina-phone').length, 0, 'the add-device push is still open');
  await page.click('#pushauth-backup-continue');
  const link = page.locator('#pushauth-enroll-url');
  await link.waitFor({ timeout: 30000 });
  mkdirSync(join(RUN, 'devices', 'gina-laptop'), { recursive: true });
  device('gina-laptop', 'enroll', (await link.textContent()).trim(), '--name', 'gina-laptop');
  const landed = await waitForRedirect(page, redirects);
  assert.ok(landed.searchParams.get('code'));
  const after = await pushauthdDevices('gina');
  assert.equal(after.length, 2);
  assert.ok(after.some((d) => d.name === 'gina-laptop'));
  await context.close();
  ginaCodes = ginaCodes.slice(1);
});

test('issue12: after too many wrong backup codes the page says sign-in is paused; an admin unlock lifts it', async () => {
  assert.ok(ginaCodes.length >= 1, 'no codes left');
  // Wrong codes, as a guesser would send them (through the sidecar, as the page does), until the
  // lock: pushauthd's default is ten in a row, refused from the next attempt on.
  const secret = readFileSync(join(RUN, 'sidecar-secret'), 'utf8').trim();
  let last;
  for (let i = 0; i < 12; i++) {
    const r = await fetch(`${SIDECAR}/v1/backup-codes/verify`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ realm: REALM, username: 'gina', code: 'ZZZZ-ZZZZ-ZZZZ-ZZZZ', nonce: `guess-nonce-0123456789-${i}` }),
    });
    last = r.status;
    if (r.status === 429) break;
    assert.equal(r.status, 403, await r.text());
  }
  assert.equal(last, 429, 'no lock after twelve wrong codes');
  const { context, page, redirects } = await newPage();
  await passwordStep(page, 'gina', 'state-backup-locked');
  await page.locator('#pushauth-code').waitFor({ timeout: 30000 });
  await page.click('#pushauth-use-backup');
  // Even a right code is refused while locked, with a message saying so.
  await page.locator('#pushauth-backup-code').fill(ginaCodes[0]);
  await page.click('#pushauth-backup-submit');
  await page.getByText('Too many wrong backup codes were typed for your account').waitFor({ timeout: 30000 });
  await page.screenshot({ path: join(ART, 'backup-code-locked.png') });
  assert.equal(redirects.length, 0);
  await context.close();

  const token = readFileSync(join(RUN, 'admin-token'), 'utf8').trim();
  const r = await fetch(`${PUSHAUTHD}/v1/admin/users/gina/unlock`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, await r.text());
  const again = await newPage();
  await passwordStep(again.page, 'gina', 'state-backup-unlocked');
  await again.page.locator('#pushauth-code').waitFor({ timeout: 30000 });
  await again.page.click('#pushauth-use-backup');
  await again.page.locator('#pushauth-backup-code').fill(ginaCodes[0]);
  await again.page.click('#pushauth-backup-submit');
  await again.page.locator('#pushauth-backup-replacement').waitFor({ timeout: 30000 });
  await again.page.click('#pushauth-backup-continue');
  const landed = await waitForRedirect(again.page, again.redirects);
  assert.equal(landed.searchParams.get('state'), 'state-backup-unlocked');
  await again.context.close();
});

// ------------------------------------------------------------------ issue 14: push as the only step

const PASSWORDLESS_FLOW = 'push passwordless';
const PASSWORDLESS_FORMS = 'push passwordless forms';
const PASSWORDLESS_CLIENT = 'passwordless-app';
let passwordlessReady;

/** The cidaas-style flow, built as README "Push as the only step (passwordless)" says: Cookie
 *  (alternative), or a sub-flow of "Username Form" then "Push approval", both required. It is
 *  bound to one client only (its browser flow override), so the realm's browser flow and every
 *  other client keep the password. Hana has a phone and no password at all; Ivan has a
 *  password and no device. Made once, by whichever issue14 test runs first. */
function passwordlessClient() {
  passwordlessReady ??= (async () => {
    const flow = `/realms/${REALM}/authentication/flows/${encodeURIComponent(PASSWORDLESS_FLOW)}`;
    await kc('POST', `/realms/${REALM}/authentication/flows`, {
      alias: PASSWORDLESS_FLOW, description: 'user name, then push; no password',
      providerId: 'basic-flow', topLevel: true, builtIn: false,
    });
    await kc('POST', `${flow}/executions/execution`, { provider: 'auth-cookie' });
    await kc('POST', `${flow}/executions/flow`, { alias: PASSWORDLESS_FORMS, type: 'basic-flow', provider: 'registration-page-form', description: '' });
    const forms = `/realms/${REALM}/authentication/flows/${encodeURIComponent(PASSWORDLESS_FORMS)}`;
    await kc('POST', `${forms}/executions/execution`, { provider: 'auth-username-form' });
    await kc('POST', `${forms}/executions/execution`, { provider: 'pushauth' });
    const wanted = { 'auth-cookie': 'ALTERNATIVE', [PASSWORDLESS_FORMS]: 'ALTERNATIVE', 'auth-username-form': 'REQUIRED', pushauth: 'REQUIRED' };
    for (const e of await kc('GET', `${flow}/executions`)) {
      const requirement = wanted[e.authenticationFlow ? e.displayName : e.providerId];
      if (requirement && e.requirement !== requirement) await kc('PUT', `${flow}/executions`, { ...e, requirement });
    }
    const steps = (await kc('GET', `${flow}/executions`))
      .map((e) => [e.authenticationFlow ? e.displayName : e.providerId, e.requirement, e.level]);
    assert.deepEqual(steps, [
      ['auth-cookie', 'ALTERNATIVE', 0],
      [PASSWORDLESS_FORMS, 'ALTERNATIVE', 0],
      ['auth-username-form', 'REQUIRED', 1],
      ['pushauth', 'REQUIRED', 1],
    ], 'the flow has exactly the user name and the push, and no password step');
    const { id } = (await kc('GET', `/realms/${REALM}/authentication/flows`)).find((f) => f.alias === PASSWORDLESS_FLOW);
    await kc('POST', `/realms/${REALM}/clients`, {
      clientId: PASSWORDLESS_CLIENT, publicClient: true, standardFlowEnabled: true, directAccessGrantsEnabled: false,
      redirectUris: [`${REDIRECT}*`], authenticationFlowBindingOverrides: { browser: id },
    });
    await kc('POST', `/realms/${REALM}/users`, {
      username: 'hana', enabled: true, email: 'hana@example.org', emailVerified: true, firstName: 'hana', lastName: 'Tester',
    });
    await kc('POST', `/realms/${REALM}/users`, {
      username: 'ivan', enabled: true, email: 'ivan@example.org', emailVerified: true, firstName: 'ivan', lastName: 'Tester',
      credentials: [{ type: 'password', value: PASSWORD, temporary: false }],
    });
    await enrollPhone('hana', 'hana-phone');
    // Nothing else moved: the realm and the other clients keep the password flow.
    assert.equal((await kc('GET', `/realms/${REALM}`)).browserFlow, 'push browser');
    const app = (await kc('GET', `/realms/${REALM}/clients?clientId=app`))[0];
    assert.equal(app.authenticationFlowBindingOverrides?.browser, undefined);
    // Hana has no password for any flow to check.
    const creds = await kc('GET', `/realms/${REALM}/users/${await userId('hana')}/credentials`);
    assert.equal(creds.filter((c) => c.type === 'password').length, 0, JSON.stringify(creds));
  })();
  return passwordlessReady;
}

/** The HTML of every Keycloak page the browser is shown (redirects have none). */
function keycloakPages(page) {
  const pages = [];
  page.on('response', async (r) => {
    if (r.request().resourceType() !== 'document' || !r.url().startsWith(KC)) return;
    try {
      pages.push({ url: r.url(), html: await r.text() });
    } catch { /* a redirect: no body */ }
  });
  return pages;
}

function assertNoPasswordField(pages) {
  assert.ok(pages.length >= 2, `pages seen: ${pages.length}`);
  for (const { url, html } of pages) {
    assert.doesNotMatch(html, /type=["']?password|name=["']?password/i, `a password field on ${url}`);
  }
}

/** Keycloak's login session cookies in this browser (the identity cookie is set only by a login). */
async function keycloakCookies(context) {
  return (await context.cookies()).filter((c) => /^KEYCLOAK_(IDENTITY|SESSION)/.test(c.name) && c.value).map((c) => c.name);
}

async function usernameOnly(page, user, state) {
  await page.goto(authUrl(state, REALM, PASSWORDLESS_CLIENT));
  await page.locator('#username').waitFor({ timeout: 30000 });
  assert.equal(await page.locator('input[type=password]').count(), 0, 'a password field next to the user name');
  await page.fill('#username', user);
  await page.click('#kc-login');
}

test('issue14: passwordless (Username Form, then Push approval): the push approved with the shown code logs in, and no password is asked', async () => {
  await passwordlessClient();
  const { context, page, redirects } = await newPage();
  const pages = keycloakPages(page);
  await usernameOnly(page, 'hana', 'state-passwordless');
  const codeBox = page.locator('#pushauth-code');
  await codeBox.waitFor({ timeout: 30000 });
  assert.equal(await page.locator('input[type=password]').count(), 0);
  const code = (await codeBox.textContent()).trim();
  assert.match(code, /^\d{6}$/);
  assert.match(await page.locator('#pushauth-devices').textContent(), /hana-phone/);
  await page.screenshot({ path: join(ART, 'passwordless-push.png') });

  const challenge = pendingOn('hana-phone');
  assert.equal(challenge.context.realm, REALM);
  assert.equal(challenge.context.client, PASSWORDLESS_CLIENT);
  assert.equal(challenge.code_required, true);
  assert.equal(redirects.length, 0, 'a code before the device answered');
  device('hana-phone', 'approve', '--code', code, '--', challenge.id);

  const landed = await waitForRedirect(page, redirects);
  assert.equal(landed.searchParams.get('state'), 'state-passwordless');
  const authCode = landed.searchParams.get('code');
  assert.ok(authCode, `no authorization code in ${landed}`);
  // The code is good for tokens naming hana: she is logged in.
  const t = await fetch(`${KC}/realms/${REALM}/protocol/openid-connect/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: PASSWORDLESS_CLIENT, code: authCode, redirect_uri: REDIRECT }),
  });
  const tokens = await t.json();
  assert.equal(t.status, 200, JSON.stringify(tokens));
  const claims = JSON.parse(Buffer.from(tokens.id_token.split('.')[1], 'base64url').toString());
  assert.equal(claims.preferred_username, 'hana');
  const sessions = await kc('GET', `/realms/${REALM}/users/${await userId('hana')}/sessions`);
  assert.ok(sessions.some((s) => Object.values(s.clients ?? {}).includes(PASSWORDLESS_CLIENT)), JSON.stringify(sessions));
  assert.ok((await keycloakCookies(context)).includes('KEYCLOAK_IDENTITY'), 'no Keycloak session cookie after the login');
  const logins = await events('LOGIN', 'hana');
  assert.ok(logins.some((e) => e.clientId === PASSWORDLESS_CLIENT), JSON.stringify(logins));
  // Neither the user-name page nor the push page (nor any other) asked for a password.
  assertNoPasswordField(pages);
  await context.close();
});

test('issue14: passwordless: a denied push shows the failure, and nobody is logged in', async () => {
  await passwordlessClient();
  const hanaId = await userId('hana');
  const sessionsBefore = new Set((await kc('GET', `/realms/${REALM}/users/${hanaId}/sessions`)).map((s) => s.id));
  const deniedBefore = (await events('LOGIN_ERROR', 'hana')).filter((e) => e.details?.pushauth_result === 'pushDenied').length;
  const { context, page, redirects } = await newPage();
  const pages = keycloakPages(page);
  await usernameOnly(page, 'hana', 'state-passwordless-deny');
  await page.locator('#pushauth-code').waitFor({ timeout: 30000 });
  const challenge = pendingOn('hana-phone');
  assert.equal(challenge.context.client, PASSWORDLESS_CLIENT);
  device('hana-phone', 'deny', '--', challenge.id);
  await page.getByText('The login was denied on your device.').waitFor({ timeout: 30000 });
  await page.screenshot({ path: join(ART, 'passwordless-denied.png') });
  await page.waitForTimeout(1500); // a stray redirect would come now
  assert.equal(redirects.length, 0, 'an authorization code after a denial');
  assert.ok(page.url().startsWith(KC), page.url());
  assert.equal(await page.locator('input[type=password]').count(), 0);
  assertNoPasswordField(pages);
  // No session: none in Keycloak, no session cookie, and the same browser is asked again.
  const sessionsAfter = (await kc('GET', `/realms/${REALM}/users/${hanaId}/sessions`)).map((s) => s.id);
  assert.deepEqual(sessionsAfter.filter((id) => !sessionsBefore.has(id)), [], 'a session after a denial');
  assert.deepEqual(await keycloakCookies(context), []);
  const denied = (await events('LOGIN_ERROR', 'hana')).filter((e) => e.details?.pushauth_result === 'pushDenied');
  assert.ok(denied.length > deniedBefore, 'no LOGIN_ERROR for the denial');
  assert.ok(denied.some((e) => e.clientId === PASSWORDLESS_CLIENT), JSON.stringify(denied));
  await page.goto(authUrl('state-passwordless-again', REALM, PASSWORDLESS_CLIENT));
  await page.locator('#username').waitFor({ timeout: 30000 });
  assert.equal(redirects.length, 0);
  await context.close();
});

test('issue14: passwordless: a user with no device gets no enrollment link for the user name alone; with the password he does', async () => {
  await passwordlessClient();
  assert.equal((await pushauthdDevices('ivan', true)).length, 0);
  {
    const { context, page, redirects } = await newPage();
    const pages = keycloakPages(page);
    await usernameOnly(page, 'ivan', 'state-passwordless-nodevice');
    await page.getByText('A first device can only be added in a sign-in that also asks for your password').waitFor({ timeout: 30000 });
    await page.screenshot({ path: join(ART, 'passwordless-no-first-device.png') });
    assert.equal(await page.locator('#pushauth-enroll-url').count(), 0, 'an enrollment link for a user name alone');
    assert.equal(await page.locator('#pushauth-enroll-qr').count(), 0);
    assert.equal(await page.locator('#pushauth-code').count(), 0);
    await page.waitForTimeout(1000);
    assert.equal(redirects.length, 0);
    assert.deepEqual(await keycloakCookies(context), []);
    assertNoPasswordField(pages);
    await context.close();
  }
  // The realm does let a first device enroll (bootstrap = true): with the password, the same user
  // gets the link, so it was the missing password that refused it above.
  const { context, page, redirects } = await newPage();
  await passwordStep(page, 'ivan', 'state-ivan-enroll');
  const link = page.locator('#pushauth-enroll-url');
  await link.waitFor({ timeout: 30000 });
  mkdirSync(join(RUN, 'devices', 'ivan-phone'), { recursive: true });
  device('ivan-phone', 'enroll', (await link.textContent()).trim(), '--name', 'ivan-phone');
  const landed = await waitForRedirect(page, redirects);
  assert.equal(landed.searchParams.get('state'), 'state-ivan-enroll');
  assert.equal((await pushauthdDevices('ivan')).length, 1);
  await context.close();
});
