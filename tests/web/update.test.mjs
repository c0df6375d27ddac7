// Signed updates of the installed web app (issue 11, "The server that serves the app could
// serve a changed app…"), in headless Chromium against the real pushauthd binary.
//
// The app is installed from the files built into pushauthd; then pushauthd is restarted on the
// same origin with `[web] app_dir` serving: (a) a tampered app.js and index.html under the old
// signed manifest, (b) a release signed by a key the server made itself, (c) a genuine update
// signed by the release key (made here), (d) the older genuine release again (a downgrade),
// (e) a changed worker script. A persistent Chromium profile keeps the installed worker across
// the restarts. Also: pages outside the app run sandboxed, /enroll comes from the signed cache,
// the app opens with pushauthd stopped, and the first load's transfer size is printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TARGET = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
const BIN = process.env.PUSHAUTH_BIN || join(TARGET, 'debug');
// The key the build signed with: a packager's, or the development key build.rs keeps.
const RELEASE_KEY = process.env.PUSHAUTH_RELEASE_KEY_FILE || join(TARGET, 'pushauth-release-dev.key');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A TCP relay on the app's origin port that counts the bytes pushauthd sends: the origin stays
 * the same across pushauthd restarts, and the first load's transfer is measured on the wire.
 */
async function relay(upstreamPort) {
  const counter = { bytes: 0, responses: 0 };
  const sockets = new Set();
  const server = createServer((client) => {
    const up = connect(upstreamPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(up);
    up.on('data', (d) => {
      counter.bytes += d.length;
      counter.responses += (String(d).match(/^HTTP\/1\.1 \d{3}/gm) || []).length;
    });
    client.pipe(up);
    up.pipe(client);
    const end = () => { client.destroy(); up.destroy(); sockets.delete(client); sockets.delete(up); };
    client.on('error', end);
    up.on('error', end);
    client.on('close', end);
    up.on('close', end);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  counter.port = server.address().port;
  counter.close = () => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(resolve);
  });
  return counter;
}

/** pushauthd behind the relay (the app's origin must stay the same across restarts). */
class Server {
  constructor(dir, port, publicPort) {
    this.dir = dir;
    this.port = port;
    this.url = `http://localhost:${publicPort}`;
  }

  async start(appDir) {
    const config = join(this.dir, 'pushauthd.toml');
    writeFileSync(config, appDir ? `[web]\napp_dir = ${JSON.stringify(appDir)}\n` : '', { mode: 0o600 });
    const args = ['serve', '--config', config, '--listen', `127.0.0.1:${this.port}`,
      '--data-dir', join(this.dir, 'data'), '--admin-token-file', join(this.dir, 'admin-token'),
      '--public-url', this.url];
    this.log = [];
    this.child = spawn(join(BIN, 'pushauthd'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d) => this.log.push(String(d)));
    this.child.stderr.on('data', (d) => this.log.push(String(d)));
    const deadline = Date.now() + 30000;
    for (;;) {
      try {
        if ((await fetch(`http://127.0.0.1:${this.port}/healthz`)).ok) return;
      } catch { /* not up yet */ }
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`pushauthd did not start:\n${this.log.join('')}`);
      await sleep(100);
    }
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** Writes `files` ({name: bytes}) as an app_dir pushauthd accepts (0755 dirs, 0644 files). */
function writeApp(parent, label, files) {
  const dir = join(parent, label);
  mkdirSync(dir, { mode: 0o755 });
  for (const [name, bytes] of Object.entries(files)) {
    const path = join(dir, name);
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    writeFileSync(path, bytes, { mode: 0o644 });
    chmodSync(path, 0o644);
  }
  return dir;
}

/** A release manifest for `files`, signed by `keyPem`, as build.rs makes it. */
function release(base, files, over, keyPem) {
  const hashes = {};
  for (const [name, bytes] of Object.entries(files)) {
    if (name !== 'release.json' && name !== 'release.sig') hashes[name] = sha(bytes);
  }
  const manifest = Buffer.from(JSON.stringify({ ...base, files: hashes, ...over }, null, 2) + '\n');
  const sig = sign('sha256', manifest, { key: createPrivateKey(keyPem), dsaEncoding: 'ieee-p1363' });
  return { ...files, 'release.json': manifest, 'release.sig': sig };
}

/** Asks the page's worker for an update check and waits for the report of a check begun after. */
async function checkNow(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const sw = navigator.serviceWorker;
    const asked = Date.now();
    const timer = setTimeout(() => reject(new Error('the worker did not report')), 30000);
    sw.addEventListener('message', function on(event) {
      const state = event.data && event.data.type === 'pushauth-release' ? event.data.state : null;
      if (state && state.lastCheck && state.lastCheck.started >= asked) {
        sw.removeEventListener('message', on);
        clearTimeout(timer);
        resolve(state);
      }
    });
    sw.controller.postMessage({ type: 'pushauth-release-check' });
  }));
}

/** Keeps every check the worker reports from now on in `window.pushauthReports`. */
function recordReports(page) {
  return page.evaluate(() => {
    window.pushauthReports = [];
    navigator.serviceWorker.addEventListener('message', (event) => {
      const state = event.data && event.data.type === 'pushauth-release' ? event.data.state : null;
      if (state && state.lastCheck) window.pushauthReports.push(state.lastCheck);
    });
  });
}

/**
 * Keeps the requests the browser (page and worker) has not finished, so that a navigation that
 * never reaches "load" says what it waits for.
 */
function trackRequests(context) {
  const pending = new Map();
  context.on('request', (r) => pending.set(r, Date.now()));
  context.on('requestfinished', (r) => pending.delete(r));
  context.on('requestfailed', (r) => pending.delete(r));
  return () => [...pending].map(([r, at]) =>
    `${r.method()} ${r.url()} from ${r.serviceWorker() ? 'the worker' : 'the page'}, ${Date.now() - at} ms`);
}

/** The browser's service worker versions (CDP), as "id script status running" lines. */
async function workerVersions(page) {
  try {
    const cdp = await page.context().newCDPSession(page);
    const versions = new Map();
    cdp.on('ServiceWorker.workerVersionUpdated', ({ versions: list }) => {
      for (const v of list) versions.set(v.versionId, `${v.versionId} ${v.scriptURL} ${v.status} ${v.runningStatus} controls ${v.controlledClients.length}`);
    });
    await cdp.send('ServiceWorker.enable');
    await sleep(500);
    await cdp.detach();
    return [...versions.values()];
  } catch (e) {
    return [`(not available: ${e.message})`];
  }
}

/** page.reload(), naming the unfinished requests and pushauthd's last lines when it fails. */
async function reload(page, unfinished, server) {
  try {
    return await page.reload();
  } catch (e) {
    e.message += `\nservice workers:\n  ${(await workerVersions(page)).join('\n  ')}`;
    e.message += `\nunfinished requests:\n  ${unfinished().join('\n  ') || '(none)'}` +
      `\npushauthd's last output:\n${server.log.join('').slice(-2000)}`;
    throw e;
  }
}

const info = (page) => page.evaluate(async () => (await import('/app/release.js')).releaseInfo());
const marks = (page) => page.evaluate(() => ({
  tampered: document.documentElement.dataset.tampered || null,
  release: document.documentElement.dataset.release || null,
  tamperedNode: Boolean(document.getElementById('tampered')),
}));

test('issue11_an_installed_app_refuses_tampered_and_forged_updates_and_takes_a_signed_one', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'pushauth-update-'));
  const upstream = await freePort();
  const wire = await relay(upstream);
  const server = new Server(tmp, upstream, wire.port);
  const context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
    executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS,
    viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
  });
  try {
    await server.start(null);
    const unfinished = trackRequests(context);
    const page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (e) => console.log('page error:', e.message));

    wire.bytes = 0;
    wire.responses = 0;
    // ---- install from the files built into pushauthd
    await page.goto(`${server.url}/app/`);
    // The app calls startRelease() from release.js at every start.
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 30000 });
    let now = await info(page);
    for (let i = 0; !now.installed && i < 100; i++) { await sleep(100); now = await info(page); }
    assert.ok(now.installed, JSON.stringify(now));
    const builtManifest = Buffer.from(await (await fetch(`${server.url}/app/release.json`)).arrayBuffer());
    const built = JSON.parse(builtManifest);
    assert.equal(now.version, built.version);
    const fpr = 'SHA256:' + createHash('sha256').update(Buffer.from(built.release_key, 'base64url')).digest('base64').replace(/=+$/, '');
    assert.equal(now.fingerprint, fpr);
    assert.equal(now.development, built.development);

    // What the first load moved (the page and the worker's install, headers included), before
    // this test fetches anything itself.
    await sleep(500);
    const firstLoad = wire.bytes;
    const firstResponses = wire.responses;
    const original = {};
    for (const name of [...Object.keys(built.files), 'release.json', 'release.sig']) {
      original[name] = Buffer.from(await (await fetch(`${server.url}/app/${name}`)).arrayBuffer());
    }
    let gzipped = 0;
    for (const bytes of Object.values(original)) gzipped += gzipSync(bytes, { level: 9 }).length;
    console.log(`first load: ${firstLoad} bytes in ${firstResponses} responses from pushauthd on the wire, headers included ` +
      `(the release: ${Object.keys(original).length} files, ${gzipped} bytes gzip-compressed)`);
    assert.ok(firstLoad < 100_000, `first load ${firstLoad} bytes`);

    const main = 'app.js' in built.files ? 'app.js' : Object.keys(built.files).find((f) => f.endsWith('.js') && f !== 'sw.js');
    const keyPem = readFileSync(RELEASE_KEY, 'utf8');

    await t.test('(a) tampered files under the old signed manifest: the installed app is kept and the refusal reported', async () => {
      await server.stop();
      const tampered = {
        ...original,
        [main]: Buffer.concat([original[main], Buffer.from("\ndocument.documentElement.dataset.tampered = 'yes';\n")]),
        'index.html': Buffer.from(String(original['index.html']).replace(/<body[^>]*>/, '$&<p id="tampered">TAMPERED</p>')),
      };
      assert.notDeepEqual(tampered['index.html'], original['index.html']);
      await server.start(writeApp(tmp, 'a', tampered));
      await reload(page, unfinished, server);
      assert.deepEqual(await marks(page), { tampered: null, release: null, tamperedNode: false });
      await checkNow(page);
      const got = await info(page);
      assert.equal(got.version, built.version);
      assert.equal(got.status, 'refused');
      assert.ok(got.refusal.reason.includes(main) && got.refusal.reason.includes('index.html'), got.refusal.reason);
      assert.match(got.refusal.reason, /not as signed/);
      // /enroll, outside /app/, also comes from the signed cache.
      await page.goto(`${server.url}/enroll?token=abc`);
      assert.deepEqual(await marks(page), { tampered: null, release: null, tamperedNode: false });
      await page.goto(`${server.url}/app/`);
      assert.deepEqual(await marks(page), { tampered: null, release: null, tamperedNode: false });
    });

    await t.test('(b) a release signed by a key the server made: refused', async () => {
      await server.stop();
      const { generateKeyPairSync } = await import('node:crypto');
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const jwk = publicKey.export({ format: 'jwk' });
      const raw = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
      const files = { ...original, [main]: Buffer.concat([original[main], Buffer.from("\ndocument.documentElement.dataset.tampered = 'forged';\n")]) };
      const forged = release(built, files, { version: 'forged', released: built.released + 100, release_key: raw.toString('base64url') },
        privateKey.export({ format: 'pem', type: 'pkcs8' }));
      await server.start(writeApp(tmp, 'b', forged));
      await checkNow(page);
      const got = await info(page);
      assert.equal(got.version, built.version);
      assert.equal(got.status, 'refused');
      assert.match(got.refusal.reason, /not signed by the pinned release key/);
      assert.equal(got.refusal.version, 'forged');
      await reload(page, unfinished, server);
      assert.equal((await marks(page)).tampered, null);
    });

    await t.test('(c) a genuine update signed by the release key: taken', async () => {
      await server.stop();
      const files = { ...original, [main]: Buffer.concat([original[main], Buffer.from("\ndocument.documentElement.dataset.release = 'test-2';\n")]) };
      const genuine = release(built, files, { version: `${built.version}-test2`, released: built.released + 10 }, keyPem);
      // The app's own check from the reload in (b) (startRelease() asks the worker at every
      // start) may still be pending and take the update before the check asked here; this
      // check then rightly finds the installed release `current`. Which check took the update
      // is not the point: one of them must report `updated` with the new version.
      await recordReports(page);
      await server.start(writeApp(tmp, 'c', genuine));
      await checkNow(page);
      const got = await info(page);
      const reports = await page.evaluate(() => window.pushauthReports);
      assert.ok(reports.some((r) => r.result === 'updated' && r.version === `${built.version}-test2`), JSON.stringify(reports));
      assert.ok(['updated', 'current'].includes(got.status), JSON.stringify(got));
      assert.equal(got.version, `${built.version}-test2`);
      assert.equal(got.refusal, null);
      assert.equal(got.fingerprint, fpr);
      await reload(page, unfinished, server);
      assert.equal((await marks(page)).release, 'test-2');
    });

    await t.test('(d) the older genuine release again: refused as a downgrade', async () => {
      await server.stop();
      await server.start(writeApp(tmp, 'd', original));
      await checkNow(page);
      const got = await info(page);
      assert.equal(got.version, `${built.version}-test2`);
      assert.match(got.refusal.reason, /downgrade/);
      await reload(page, unfinished, server);
      assert.equal((await marks(page)).release, 'test-2');
    });

    await t.test('pages the server sends outside the app run in an opaque origin', async () => {
      const sandboxed = await page.goto(`${server.url}/openapi.json`);
      assert.equal(sandboxed.status(), 200);
      assert.equal(await page.evaluate(() => self.origin), 'null');
      for (const path of ['/v1/device/challenges', '/app/release.json', '/app/sw.js', '/healthz']) {
        await page.goto(`${server.url}${path}`);
        assert.equal(await page.evaluate(() => self.origin), 'null', path);
      }
      const unknown = await page.goto(`${server.url}/app/not-in-the-release.html`);
      assert.equal(unknown.status(), 404);
      // The app itself, from the worker's cache, with the worker's own headers.
      const app = await page.goto(`${server.url}/app/`);
      assert.equal(await page.evaluate(() => self.origin), server.url);
      assert.ok(app.fromServiceWorker());
      const headers = app.headers();
      assert.match(headers['content-security-policy'], /^default-src 'none'; script-src 'self';.*frame-ancestors 'none'/);
      assert.equal(headers['referrer-policy'], 'no-referrer');
      assert.equal(headers['x-content-type-options'], 'nosniff');
    });

    await t.test('the installed app opens with pushauthd stopped', async () => {
      await server.stop();
      const r = await reload(page, unfinished, server);
      assert.ok(r.ok(), `status ${r.status()}`);
      assert.equal((await marks(page)).release, 'test-2');
      assert.ok(await page.evaluate(() => document.querySelectorAll('script[type=module]').length > 0));
      const text = await page.evaluate(() => document.body.innerText);
      console.log(`offline page text: ${JSON.stringify(text.slice(0, 200))}`);
      await page.waitForTimeout(300);
      assert.equal((await info(page)).version, `${built.version}-test2`);
    });

    await t.test('(e) a changed worker script on the server: a red warning', async () => {
      // Served beside the installed genuine release (c), with sw-push.js changed.
      const files = { ...original, [main]: Buffer.concat([original[main], Buffer.from("\ndocument.documentElement.dataset.release = 'test-2';\n")]) };
      const genuine = release(built, files, { version: `${built.version}-test2`, released: built.released + 10 }, keyPem);
      genuine['sw-push.js'] = Buffer.concat([genuine['sw-push.js'], Buffer.from('\n// changed\n')]);
      await server.start(writeApp(tmp, 'e', genuine));
      await reload(page, unfinished, server);
      await checkNow(page);
      const got = await info(page);
      assert.match(got.warning || '', /sw-push\.js/);
      assert.equal(got.version, `${built.version}-test2`);
    });

    await t.test('(f) a genuine update that changes the worker script: taken, no warning', async () => {
      await server.stop();
      const files = {
        ...original,
        [main]: Buffer.concat([original[main], Buffer.from("\ndocument.documentElement.dataset.release = 'test-3';\n")]),
        'sw.js': Buffer.concat([original['sw.js'], Buffer.from('\n// release test-3\n')]),
      };
      const genuine = release(built, files, { version: `${built.version}-test3`, released: built.released + 20 }, keyPem);
      await server.start(writeApp(tmp, 'f', genuine));
      await reload(page, unfinished, server);
      let got = await info(page);
      for (let i = 0; i < 50 && (got.version !== `${built.version}-test3` || got.warning); i++) {
        await checkNow(page).catch(async (e) => {
          // Said, not thrown: the next round asks again. A worker that never answers shows here.
          console.log(`the worker's check failed: ${e.message}; service workers:\n  ${(await workerVersions(page)).join('\n  ')}` +
            `\nunfinished requests:\n  ${unfinished().join('\n  ') || '(none)'}`);
        });
        got = await info(page);
      }
      assert.equal(got.version, `${built.version}-test3`, JSON.stringify(got));
      assert.equal(got.warning, null, JSON.stringify(got));
      await reload(page, unfinished, server);
      assert.equal((await marks(page)).release, 'test-3');
    });

    await t.test('attack11 (g) a POST navigation another site makes does not run the server\'s page in the app\'s origin', async () => {
      // The worker let every non-GET request through untouched, so a form on any web page the
      // person visits could make the browser POST to this origin and render whatever the
      // server answers there, unsandboxed, beside the device's keys. A server stand-in answers
      // every POST with a page of its own.
      await server.stop();
      const evil = createHttpServer((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end('<!doctype html><p id="evil">the server\'s own page</p>');
      });
      await new Promise((resolve) => evil.listen(server.port, '127.0.0.1', resolve));
      const other = await context.newPage();
      try {
        await other.goto('about:blank');
        await other.setContent(`<form id="f" method="post" action="${server.url}/login"><input name="a" value="b"></form>`);
        const [posted] = await Promise.all([other.waitForNavigation(), other.evaluate(() => document.getElementById('f').submit())]);
        assert.equal(await other.evaluate(() => self.origin), 'null', 'a POST navigation ran in the app\'s origin');
        assert.ok(posted.fromServiceWorker(), 'the worker answered the POST itself');
        assert.match(posted.headers()['content-security-policy'], /^sandbox/);
        assert.equal(posted.headers()['x-content-type-options'], 'nosniff');
        assert.ok(!(await other.content()).includes('the server'), 'the server\'s page was shown');
        await other.goto('about:blank');
        await other.setContent(`<form id="f" method="post" action="${server.url}/app/"><input name="a" value="b"></form>`);
        await Promise.all([other.waitForNavigation(), other.evaluate(() => document.getElementById('f').submit())]);
        assert.equal(await other.evaluate(() => self.origin), 'null', 'a POST navigation to /app/ ran in the app\'s origin');
      } finally {
        await other.close();
        // close() alone waits for every keep-alive connection to go idle, and the app's
        // long-polls (answered at once by this stand-in) kept one busy for up to 100 s.
        evil.closeAllConnections();
        await new Promise((resolve) => evil.close(resolve));
      }
    });
  } finally {
    await context.close();
    await server.stop();
    await wire.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
