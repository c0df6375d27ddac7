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
const listeners = new Set();

async function readState() {
  if (!('caches' in self)) return {};
  const hit = await (await caches.open(STATE_CACHE)).match(STATE_URL);
  return hit ? hit.json() : {};
}

function describe(state) {
  const inst = state.installed;
  const audit = state.audit;
  const warning = audit && audit.workerFiles && audit.workerFiles.length > 0
    ? `The server offers service worker code that the installed signed release does not name (${audit.workerFiles.join(', ')}). ` +
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
  const registration = await sw.register('/app/sw.js', { scope: '/', updateViaCache: 'none' });
  const ready = await sw.ready;
  if (ready.active) ready.active.postMessage({ type: 'pushauth-release-check' });
  return registration;
}
