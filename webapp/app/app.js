// The pushauth web authenticator: entry point. Refuses to run outside a secure context, then
// shows the enrollment screen (/enroll?token=…), the requests (/app/) or the settings
// (/app/#settings), and the offline notice whenever the server cannot be reached.

import { el, clear, visible } from './dom.js';
import { listAccounts } from './keystore.js';
import { showEnroll } from './enroll.js';
import { Inbox } from './challenges.js';
import { removalNotice, showSettings } from './settings.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const nav = document.getElementById('nav');

function insecure() {
  clear(main).append(el('section', { class: 'card result bad', id: 'insecure' },
    el('h1', { text: 'This page needs HTTPS' }),
    el('p', { text: `pushauth makes and keeps this phone's key with the browser's cryptography, which works only on a secure connection (HTTPS, or localhost). This page came over plain HTTP from ${location.host}, where anyone on the network could change it.` }),
    el('p', { text: 'Ask your administrator to serve pushauthd over HTTPS (tls_cert and tls_key, or a TLS proxy in front) and open the https:// link.' })));
}

/** The offline notice: shown while any account's server cannot be reached. */
const unreachable = new Set();
function connection(ok, account, problem) {
  if (ok) unreachable.delete(account.deviceId);
  else unreachable.add(account.deviceId);
  const offline = unreachable.size > 0 || !navigator.onLine;
  banner.hidden = !offline && !problem;
  // Offline, "no login requests" would be a claim the app cannot make.
  document.body.classList.toggle('is-offline', offline);
  banner.classList.toggle('offline', offline);
  banner.id = 'banner';
  banner.textContent = offline
    ? `Offline: pushauth cannot reach ${location.host}. It cannot show or answer login requests until the connection is back.`
    : (problem || '');
}

function welcome() {
  clear(main).append(el('section', { class: 'card', id: 'welcome' },
    el('h1', { text: 'No account on this phone yet' }),
    el('p', { text: 'Ask your administrator for an enrollment link (pushauthd enroll USER prints one with a QR code), then scan the QR code with this phone\'s camera.' })));
}

/** The release check's findings that the person must see: a refused update, foreign worker code. */
function showRelease(info) {
  const box = document.getElementById('release-warning');
  if (!info || !box) return;
  const text = info.warning
    || (info.refusal ? `An update of this app was refused (${info.refusal.reason}); the installed version keeps running. Tell your administrator.` : '');
  box.textContent = text;
  box.hidden = !text;
}

function registerWorker() {
  import('./release.js')
    .then(async (release) => {
      release.onReleaseChange(showRelease);
      await release.startRelease();
      showRelease(await release.releaseInfo());
    })
    .catch(() => { /* the app works without its worker, only not offline */ });
}

async function start() {
  registerWorker();
  if (location.pathname === '/enroll') {
    await showEnroll(main, new URLSearchParams(location.search).get('token'));
    return;
  }
  let accounts = await listAccounts();
  if (accounts.length === 0) {
    welcome();
    return;
  }
  nav.hidden = false;
  const inboxRoot = el('div', { id: 'requests' });
  const settingsRoot = el('div', { id: 'settings' });
  // Right after enrollment (enroll.js lands on #enrolled): say that it worked and what next.
  const enrolled = location.hash === '#enrolled' ? el('section', { class: 'card result ok', id: 'enrolled-notice', role: 'status' },
    el('h2', { text: 'This phone is enrolled' }),
    el('p', { text: `It now approves logins for ${visible(accounts[accounts.length - 1].user)}. Turn on notifications in Settings so that a login can wake it; otherwise keep this app open.` })) : null;
  if (enrolled) history.replaceState(null, '', '/app/');
  clear(main).append(...(enrolled ? [enrolled] : []), inboxRoot, settingsRoot);
  let inbox = new Inbox(inboxRoot, connection);
  inbox.start(accounts);

  const route = async (notice = null) => {
    const hash = location.hash.slice(1);
    const settings = hash === 'settings';
    inboxRoot.hidden = settings;
    if (enrolled) enrolled.hidden = settings;
    settingsRoot.hidden = !settings;
    nav.querySelector('#nav-requests').setAttribute('aria-current', settings ? 'false' : 'page');
    nav.querySelector('#nav-settings').setAttribute('aria-current', settings ? 'page' : 'false');
    if (settings) {
      await showSettings(settingsRoot, accounts, async (removed, removedNotice) => {
        accounts = await listAccounts();
        inbox.stop();
        if (accounts.length === 0) {
          nav.hidden = true;
          welcome();
          if (removedNotice) main.prepend(removalNotice(removedNotice));
          return;
        }
        inbox = new Inbox(inboxRoot, connection);
        inbox.start(accounts);
        route(removedNotice);
      }, typeof notice === 'string' ? notice : null);
    }
    const m = /^challenge=([A-Za-z0-9_-]{1,128})$/.exec(hash);
    if (m) inbox.focus(m[1]);
  };
  window.addEventListener('hashchange', () => route());
  if ('serviceWorker' in navigator) {
    // The worker's notificationclick asks an open app to show a challenge.
    navigator.serviceWorker.addEventListener('message', (event) => {
      const data = event.data || {};
      if (data.type === 'open-challenge' && /^[A-Za-z0-9_-]{1,128}$/.test(data.id || '')) {
        location.hash = `challenge=${data.id}`;
      }
    });
  }
  await route();
}

// Restored from the back-forward cache, the page's long-polls are gone: start afresh.
window.addEventListener('pageshow', (event) => {
  if (event.persisted) location.reload();
});
window.addEventListener('offline', () => connection(false, { deviceId: 'network' }));
window.addEventListener('online', () => connection(true, { deviceId: 'network' }));

if (!window.isSecureContext) {
  insecure();
} else {
  start().catch((err) => {
    clear(main).append(el('section', { class: 'card result bad' }, el('h1', { text: 'pushauth could not start' }), el('p', { text: String(err && err.message ? err.message : err) })));
  });
}
