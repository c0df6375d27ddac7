// The web suite's harness: a real pushauthd (the binary built from this tree) on an ephemeral
// loopback port with a temporary data directory, its admin commands, a relying party's API,
// and headless Chromium (Debian's, through playwright-core) as a phone.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium-args.mjs';

export const BIN = process.env.PUSHAUTH_BIN;
export const ART = process.env.E2E_ARTIFACTS;
if (!BIN || !ART) throw new Error('run through tests/web/run.sh (PUSHAUTH_BIN, E2E_ARTIFACTS)');

/** A free loopback port (bound and released; nothing else here races for it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A Web Push service on loopback that records what pushauthd sends it and answers 201, so
 * the test can see a push leave pushauthd (h3's suite checks its VAPID JWT and encryption).
 */
export class PushService {
  static async start() {
    const s = new PushService();
    s.received = [];
    s.waiters = [];
    s.server = createHttpServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        s.received.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks) });
        for (const w of s.waiters.splice(0)) w();
        res.writeHead(201).end();
      });
    });
    await new Promise((r) => s.server.listen(0, '127.0.0.1', r));
    s.origin = `http://127.0.0.1:${s.server.address().port}`;
    return s;
  }

  /** Resolves once `n` pushes have arrived. */
  async count(n, ms = 10000) {
    const deadline = Date.now() + ms;
    while (this.received.length < n) {
      if (Date.now() > deadline) throw new Error(`${this.received.length} pushes arrived, not ${n}`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, 200); });
    }
    return this.received[n - 1];
  }

  close() {
    this.server.close();
  }
}

/** pushauthd serve on 127.0.0.1:<port>; links and the app at http://localhost:<port>. */
export class Pushauthd {
  /** `pushOrigin`: a push service origin to allow besides the public ones. */
  static async start(pushOrigin = null) {
    const p = new Pushauthd();
    p.dir = mkdtempSync(join(tmpdir(), 'pushauth-web-'));
    p.port = await freePort();
    p.url = `http://localhost:${p.port}`;
    p.config = join(p.dir, 'pushauthd.toml');
    writeFileSync(p.config, [
      '[web_push]',
      `allow_origins = [${pushOrigin ? `"${pushOrigin}"` : ''}]`,
      'subject = "mailto:ops@example.org"',
      '',
    ].join('\n'));
    chmodSync(p.config, 0o600);
    await p.serve();
    return p;
  }

  async serve() {
    this.log = [];
    const args = ['serve', '--config', this.config, '--listen', `127.0.0.1:${this.port}`,
      '--data-dir', join(this.dir, 'data'), '--admin-token-file', join(this.dir, 'admin-token'),
      '--public-url', this.url];
    this.child = spawn(join(BIN, 'pushauthd'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d) => this.log.push(String(d)));
    this.child.stderr.on('data', (d) => this.log.push(String(d)));
    const deadline = Date.now() + 30000;
    for (;;) {
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) return;
      } catch { /* not up yet */ }
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(`pushauthd did not come up:\n${this.log.join('')}`);
      }
      await sleep(100);
    }
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }

  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A pushauthd admin command against this server's store; its stdout. */
  cli(...args) {
    return execFileSync(join(BIN, 'pushauthd'), [...args, '--data-dir', join(this.dir, 'data')], {
      encoding: 'utf8', timeout: 30000,
    });
  }

  /** The enrollment link `pushauthd enroll USER` prints. */
  enrollLink(user) {
    const out = this.cli('enroll', user, '--public-url', this.url);
    const m = out.match(/http:\/\/localhost:\d+\/enroll\?token=[A-Za-z0-9_-]+/);
    if (!m) throw new Error(`no link in: ${out}`);
    return m[0];
  }

  adminToken() {
    return readFileSync(join(this.dir, 'admin-token'), 'utf8').trim();
  }

  /**
   * `pushauthd push USER`, the relying party the README demonstrates: resolves `code` once it
   * prints the code, and `done` with { status, out } when the login ends.
   */
  push(user) {
    const child = spawn(join(BIN, 'pushauthd'), ['push', user, '--server', this.url,
      '--admin-token-file', join(this.dir, 'admin-token')], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_BACKTRACE: '0' },
    });
    let out = '';
    let resolveCode;
    const code = new Promise((r) => { resolveCode = r; });
    const grab = (d) => {
      out += String(d);
      // The code is shown grouped for reading ("482 913").
      const m = out.match(/Type this code on the device: ([\d ]+)\n/);
      if (m) resolveCode(m[1].replace(/ /g, ''));
    };
    child.stdout.on('data', grab);
    child.stderr.on('data', grab);
    const done = new Promise((r) => child.on('exit', (status) => { resolveCode(null); r({ status, out }); }));
    return { code, done, child };
  }

  /** A relying party with its own API key (`pushauthd rp add`). */
  addRp(name) {
    const out = this.cli('rp', 'add', name);
    const lines = out.trim().split('\n');
    return lines[lines.length - 1].trim();
  }

  /** POST /v1/challenges as a relying party; the created challenge. */
  async challenge(apiKey, user, context, extra = {}) {
    const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
    const r = await fetch(`${this.url}/v1/challenges`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ user, context, rp_nonce: nonce, ttl_secs: 120, ...extra }),
    });
    return { status: r.status, json: await r.json() };
  }

  audit(user) {
    return this.cli('audit', '--user', user, '--limit', '200');
  }
}

export { CHROMIUM_ARGS };

/** Chromium as a phone: 390×844, touch, mobile. */
export async function phone(browser, origin) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36',
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  await context.grantPermissions(['notifications'], { origin });
  return context;
}

export function launch() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}
