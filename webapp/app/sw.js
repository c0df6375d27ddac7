// pushauth service worker: serves the installed app from its cache and takes an update only
// when the update is signed by the release key the installed version carries.
//
// Registered as /app/sw.js with scope "/" (pushauthd sends Service-Worker-Allowed: /), so that
// every page of this origin goes through it: /app/* and /enroll come from the signed cache,
// any other page the server sends is sandboxed (an opaque origin: no access to the device's
// keys), and /v1/* (the API) is never touched or cached.
//
// Kept small and stable on purpose: the browser installs a byte-changed sw.js (or an imported
// script) on its own, and no page or worker can veto that (Service Workers, "Update"); the
// page reports a worker script that the installed signed release does not name.
'use strict';
importScripts('release-verify.js');
importScripts('sw-push.js');

const R = self.PushauthRelease;
const BASE = new URL('./', self.location).pathname; // "/app/"
const STATE_CACHE = 'pushauth-release';
const STATE_URL = BASE + '__state__';
const APP_CACHE = 'pushauth-app-';
const CHECK_EVERY_MS = 10000;

// ---- state: one JSON record in its own cache; writing it is the atomic switch ----

async function readState() {
  const hit = await (await caches.open(STATE_CACHE)).match(STATE_URL);
  return hit ? hit.json() : {};
}

async function writeState(state) {
  const body = JSON.stringify(state);
  await (await caches.open(STATE_CACHE)).put(STATE_URL, new Response(body, { headers: { 'Content-Type': 'application/json' } }));
}

async function broadcast() {
  const state = await readState();
  for (const client of await self.clients.matchAll({ includeUncontrolled: true, type: 'window' })) {
    client.postMessage({ type: 'pushauth-release', state });
  }
}

/**
 * Runs `work` while holding this origin's release lock (Web Locks API). During an update the
 * old and the new worker run side by side, and both may stage, switch or clean up releases;
 * one at a time, each reads the state the other left. Serving pages never takes the lock.
 */
function exclusively(work) {
  const locks = self.navigator && self.navigator.locks;
  return locks ? locks.request('pushauth-release', () => work()) : work();
}

// ---- fetching and staging a release ----

async function fetchRelease() {
  const get = (name) => fetch(BASE + name, { cache: 'no-store', redirect: 'error', credentials: 'omit' });
  const [manifest, sig] = await Promise.all([get('release.json'), get('release.sig')]);
  if (!manifest.ok || !sig.ok) throw new Error(`the server has no release (HTTP ${manifest.status}, ${sig.status})`);
  return { manifest: new Uint8Array(await manifest.arrayBuffer()), sig: new Uint8Array(await sig.arrayBuffer()) };
}

/**
 * Downloads every file into a new cache, checking each hash; then switches to it. `no-cache`
 * revalidates with the server (ETag) and takes the HTTP cache's copy on 304, so files the page
 * has just loaded are not sent twice; the hash check is what decides either way.
 */
async function stage(m, digest) {
  const name = APP_CACHE + digest.slice(0, 16);
  await caches.delete(name);
  const cache = await caches.open(name);
  try {
    for (const file of Object.keys(m.files)) {
      const r = await fetch(BASE + file, { cache: 'no-cache', redirect: 'error', credentials: 'omit' });
      if (!r.ok) throw new R.Refusal(`${file} is missing on the server (HTTP ${r.status})`);
      const bytes = new Uint8Array(await r.arrayBuffer());
      await R.checkFile(m, file, bytes);
      // Headers made here from the signed name, not copied: the server cannot change them.
      await cache.put(BASE + file, new Response(bytes, { headers: R.appHeaders(file) }));
    }
  } catch (e) {
    await caches.delete(name);
    throw e;
  }
  const state = await readState();
  state.installed = {
    version: m.version, released: m.released, development: m.development,
    release_key: m.release_key, fingerprint: await R.fingerprint(m.release_key),
    files: m.files, digest, cache: name, installedAt: Date.now(),
  };
  state.refused = null;
  delete state.firstInstallError;
  await writeState(state);
  for (const key of await caches.keys()) {
    if (key.startsWith(APP_CACHE) && key !== name) await caches.delete(key);
  }
}

// Set by the first install of this worker: the check that follows it (the page asks at once)
// need not ask the server again about files it has just sent and that were just verified.
let justInstalled = false;

/** Trust on first use: the release the server offers now, if it is consistent. */
async function firstInstall() {
  try {
    const offered = await fetchRelease();
    const m = await R.checkFirst(offered.manifest, offered.sig);
    await stage(m, await R.sha256hex(offered.manifest));
    justInstalled = true;
  } catch (e) {
    const state = await readState();
    state.firstInstallError = { at: Date.now(), reason: String(e && e.message) };
    await writeState(state);
    throw e;
  }
}

/**
 * Asks the server whether it still serves the installed files (If-None-Match with each signed
 * hash: 304 is cheap); a file it serves changed is hashed and, when it is not the signed one,
 * named. A changed worker script is the serious case: the browser may install it on its own.
 */
async function auditServer(installed) {
  const mismatched = [];
  for (const file of Object.keys(installed.files)) {
    try {
      const r = await fetch(BASE + file, {
        cache: 'no-store', redirect: 'error', credentials: 'omit',
        headers: { 'If-None-Match': `"${installed.files[file]}"` },
      });
      if (r.status === 304) continue;
      await R.checkFile(installed, file, new Uint8Array(await r.arrayBuffer()));
    } catch (e) {
      mismatched.push(file);
    }
  }
  const workerFiles = mismatched.filter((f) => R.WORKER_FILES.includes(f));
  return { ok: mismatched.length === 0, mismatched, workerFiles, at: Date.now() };
}

async function checkForUpdate() {
  const started = Date.now();
  let state = await readState();
  if (!state.installed) return;
  let offered;
  try {
    offered = await fetchRelease();
  } catch (e) {
    state.lastCheck = { started, at: Date.now(), result: 'unreachable', reason: String(e && e.message) };
    await writeState(state);
    return;
  }
  const digest = await R.sha256hex(offered.manifest);
  let result = { started, at: Date.now(), result: 'current' };
  if (digest !== state.installed.digest) {
    let version = '?';
    try {
      version = R.parseManifest(offered.manifest).version;
    } catch (e) { /* reported below */ }
    try {
      const m = await R.checkUpdate(state.installed, offered.manifest, offered.sig);
      await stage(m, digest);
      result = { started, at: Date.now(), result: 'updated', version: m.version };
    } catch (e) {
      const reason = e instanceof R.Refusal ? String(e.message) : `the update could not be downloaded: ${e && e.message}`;
      state = await readState();
      state.refused = { at: Date.now(), version, digest, reason };
      result = { started, at: Date.now(), result: 'refused', version, reason };
      await writeState(state);
    }
  }
  state = await readState();
  if (justInstalled && result.result === 'current') {
    justInstalled = false;
    state.lastCheck = result;
    await writeState(state);
    return;
  }
  justInstalled = false;
  const audit = await auditServer(state.installed);
  if (!audit.ok && result.result === 'current') {
    // The same signed release, but the server sends other bytes: refused, and said so.
    const reason = `the server serves ${audit.mismatched.join(', ')} not as signed in the installed release ${state.installed.version}; kept the installed app`;
    state.refused = { at: Date.now(), version: state.installed.version, digest, reason };
    result = { started, at: Date.now(), result: 'refused', version: state.installed.version, reason };
  }
  state.lastCheck = result;
  state.audit = audit;
  await writeState(state);
}

let checking = null;
let rerun = null;
let lastCheckAt = 0;
/** One check at a time; a forced one asked during a check runs again after it (it must see the
 * server as it is now), an unforced one is throttled. */
function checkSoon(force) {
  if (checking) {
    if (!force) return checking;
    if (!rerun) {
      rerun = checking.then(() => {
        rerun = null;
        return checkSoon(true);
      });
    }
    return rerun;
  }
  if (!force && Date.now() - lastCheckAt < CHECK_EVERY_MS) return Promise.resolve();
  checking = exclusively(checkForUpdate)
    .catch(() => {})
    .then(broadcast)
    .finally(() => {
      checking = null;
      lastCheckAt = Date.now();
    });
  return checking;
}

// ---- serving ----

/** A plain-text answer the worker makes itself: sandboxed, never sniffed, never framed. */
function plainText(status, text) {
  return new Response(text, {
    status,
    headers: {
      'Content-Type': 'text/plain; charset=utf-8', 'Content-Security-Policy': "sandbox; default-src 'none'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer',
    },
  });
}

function notInApp() {
  return plainText(404, 'Not part of the installed pushauth app.\n');
}

async function fromInstalled(name, request) {
  const state = await readState();
  if (!state.installed) return fetch(request);
  if (!Object.prototype.hasOwnProperty.call(state.installed.files, name)) return notInApp();
  const hit = await (await caches.open(state.installed.cache)).match(BASE + name);
  if (hit) return hit;
  // The cache was evicted: the network copy only if it is the signed file.
  try {
    const r = await fetch(BASE + name, { cache: 'no-store', redirect: 'error', credentials: 'omit' });
    const bytes = new Uint8Array(await r.arrayBuffer());
    await R.checkFile(state.installed, name, bytes);
    return new Response(bytes, { headers: R.appHeaders(name) });
  } catch (e) {
    return plainText(503, `pushauth: ${name} is not available (${e && e.message}).\n`);
  }
}

/** A page outside the app, from the server, in an opaque origin (CSP sandbox). */
async function sandboxed(request) {
  const r = await fetch(request);
  if (r.type === 'opaqueredirect') return r;
  const headers = new Headers(r.headers);
  headers.append('Content-Security-Policy', 'sandbox');
  return new Response(r.body, { status: r.status, statusText: r.statusText, headers });
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    await exclusively(async () => {
      const state = await readState();
      if (!state.installed) await firstInstall();
    });
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    await self.clients.claim();
    // Caches a worker left behind when it was stopped in the middle of staging. Under the
    // lock: the worker this one replaces may be staging an update right now, and deleting its
    // new cache then left the installed release pointing at nothing.
    await exclusively(async () => {
      const state = await readState();
      for (const key of await caches.keys()) {
        if (key.startsWith(APP_CACHE) && (!state.installed || key !== state.installed.cache)) await caches.delete(key);
      }
    });
  })());
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'pushauth-release-check') event.waitUntil(checkSoon(true));
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.mode === 'navigate' && request.method !== 'GET') {
    // The app posts no form (form-action 'none'). A form on any other site can make the
    // browser POST here: the server's answer would be a page in this origin, unsigned, beside
    // the device's keys. So no such navigation reaches the server.
    event.respondWith(notInApp());
    return;
  }
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  const path = url.pathname;
  const name = path.startsWith(BASE) ? path.slice(BASE.length) || 'index.html' : null;
  // The release files and the worker's own scripts always come from the server, so the worker
  // and the page can compare them with the installed release.
  const passThrough = name === 'release.json' || name === 'release.sig' || R.WORKER_FILES.includes(name);
  if (request.mode === 'navigate') {
    // Only signed pages run in this origin (where the device's keys are); anything else the
    // server sends as a page, the API included, opens sandboxed.
    if (name !== null && !passThrough) {
      event.respondWith(fromInstalled(name, request));
      event.waitUntil(checkSoon(false));
    } else if (path === '/enroll') {
      event.respondWith(fromInstalled('index.html', request));
    } else if (path === '/') {
      event.respondWith(Response.redirect(BASE, 302));
    } else {
      event.respondWith(sandboxed(request));
    }
    return;
  }
  // Subresources: the app's files from the signed cache; the API (/v1/*) and everything else
  // untouched and never cached.
  if (name !== null && !passThrough) event.respondWith(fromInstalled(name, request));
});
