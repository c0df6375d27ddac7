// The page side of signed releases: registers the service worker, asks it to look for an
// update in the background, and tells the settings screen the installed version, the release
// key fingerprint and what the last update check found.
//
//   import { startRelease, releaseInfo, onReleaseChange } from './release.js';
//   await startRelease();                 // once, at app start
//   const info = await releaseInfo();     // for settings
//   onReleaseChange((info) => render(info));
//
// releaseInfo() resolves to:
//   { installed: boolean,            // the worker has installed a release (offline works)
//     controlled: boolean,           // this page was served by the worker
//     version, released (seconds), development (boolean), fingerprint ("SHA256:…"),
//     status: 'not-installed' | 'current' | 'updated' | 'refused' | 'unreachable' | 'unknown',
//     refusal: null | { version, reason, at },   // the last update that was refused, and why
//     checkedAt: null | ms since the epoch,       // when the worker last asked the server
//     warning: null | string }       // red: the server offers worker code the release does not name

const STATE_CACHE = 'pushauth-release';
const STATE_URL = '/app/__state__';
const WORKER_FILES = ['sw.js', 'sw-push.js', 'release-verify.js'];
const listeners = new Set();
// Worker scripts this page itself found on the server that the installed release does not name.
let pageFinding = [];

async function readState() {
  if (!('caches' in self)) return {};
  const hit = await (await caches.open(STATE_CACHE)).match(STATE_URL);
  return hit ? hit.json() : {};
}

function describe(state) {
  const inst = state.installed;
  const audit = state.audit;
  const unsigned = new Set([...(audit && audit.workerFiles ? audit.workerFiles : []), ...pageFinding]);
  const warning = unsigned.size > 0
    ? `The server offers service worker code that the installed signed release does not name (${[...unsigned].join(', ')}). ` +
      'The browser may install it on its own. Do not approve logins until your administrator confirms a genuine update; if in doubt, remove this device and enroll again.'
    : null;
  return {
    installed: Boolean(inst),
    controlled: Boolean(navigator.serviceWorker && navigator.serviceWorker.controller),
    version: inst ? inst.version : null,
    released: inst ? inst.released : null,
    development: inst ? inst.development : null,
    fingerprint: inst ? inst.fingerprint : null,
    status: !inst ? 'not-installed' : state.lastCheck ? state.lastCheck.result : 'unknown',
    refusal: state.refused ? { version: state.refused.version, reason: state.refused.reason, at: state.refused.at } : null,
    checkedAt: state.lastCheck ? state.lastCheck.at : null,
    firstInstallError: state.firstInstallError ? state.firstInstallError.reason : null,
    warning,
  };
}

/** The release as installed, and what the last update check found. */
export async function releaseInfo() {
  return describe(await readState());
}

/** Calls `callback(info)` whenever the worker reports a check; returns an unsubscribe function. */
export function onReleaseChange(callback) {
  listeners.add(callback);
  return () => listeners.delete(callback);
}

function emit(state) {
  const info = describe(state);
  for (const callback of listeners) {
    try {
      callback(info);
    } catch (e) {
      console.error('release listener failed', e);
    }
  }
}

async function sha256hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Worker scripts the server serves now that `files` (the installed release) does not name. */
async function unsignedWorkerFiles(files) {
  const bad = [];
  for (const name of WORKER_FILES) {
    if (!files[name]) continue;
    try {
      // The worker passes its own scripts through to the server, so this is the server's copy.
      const r = await fetch(`/app/${name}`, { cache: 'no-store', credentials: 'omit' });
      if (!r.ok || (await sha256hex(await r.arrayBuffer())) !== files[name]) bad.push(name);
    } catch (e) {
      // Offline: nothing to compare.
    }
  }
  return bad;
}

/** Asks the worker for an update check; resolves when it reports (or after 15 s). */
function askWorkerToCheck() {
  const sw = navigator.serviceWorker;
  if (!sw || !sw.controller) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      sw.removeEventListener('message', on);
      clearTimeout(timer);
      resolve();
    };
    const on = (event) => {
      if (event.data && event.data.type === 'pushauth-release') done();
    };
    const timer = setTimeout(done, 15000);
    sw.addEventListener('message', on);
    sw.controller.postMessage({ type: 'pushauth-release-check' });
  });
}

/**
 * The page's own look at the worker scripts, when the browser finds a new worker: a genuine
 * release names its sw.js, so the worker is asked to take a pending signed update first.
 */
async function checkWorkerScripts() {
  let state = await readState();
  if (!state.installed) return;
  let bad = await unsignedWorkerFiles(state.installed.files);
  if (bad.length > 0) {
    await askWorkerToCheck();
    state = await readState();
    bad = await unsignedWorkerFiles(state.installed.files);
  }
  pageFinding = bad;
  emit(state);
}

/**
 * Registers the worker (scope "/": every page of this origin goes through it) and asks it to
 * check for an update. Resolves to the registration, or null where there is no service worker
 * (not a secure context).
 */
export async function startRelease() {
  if (!self.isSecureContext || !('serviceWorker' in navigator)) return null;
  const sw = navigator.serviceWorker;
  sw.addEventListener('message', (event) => {
    if (event.data && event.data.type === 'pushauth-release') emit(event.data.state);
  });
  // Best-effort storage may be evicted under pressure, and with it the installed release and
  // the device's keys: ask the browser to keep it (granted or not at its discretion).
  if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {});
  const registration = await sw.register('/app/sw.js', { scope: '/', updateViaCache: 'none' });
  // The browser installs a byte-changed worker on its own: look at what it found (not at the
  // first install, when there is nothing to compare with yet).
  registration.addEventListener('updatefound', () => {
    if (registration.active) checkWorkerScripts().catch(() => {});
  });
  const hadController = Boolean(sw.controller);
  sw.addEventListener('controllerchange', () => {
    if (hadController) checkWorkerScripts().catch(() => {});
  });
  const ready = await sw.ready;
  if (ready.active) ready.active.postMessage({ type: 'pushauth-release-check' });
  return registration;
}
