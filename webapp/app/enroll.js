// The enrollment screen (/enroll?token=…): which server and user the link is for, a device
// name, then "Enroll": a WebCrypto key pair made here (non-extractable), the proof of
// possession signed with it, and the account kept in IndexedDB. Afterwards the page replaces
// itself with /app/, so the token leaves the address bar and history.

import { b64url } from './bytes.js';
import { el, clear, visible } from './dom.js';
import { ApiError, OfflineError, publicRequest } from './api.js';
import { enrollMessage, generateDeviceKey, signB64, fingerprint } from './signing.js';
import { listAccounts, putAccount } from './keystore.js';
import { defaultDeviceName } from './platform.js';
import { offlineFromEnroll } from './offline.js';

/**
 * The test switch: `localStorage['pushauth.test.alg'] = 'es256'` makes this page use ECDSA
 * P-256 even where the browser has Ed25519. It only picks between the two algorithms the
 * server accepts anyway, so it weakens nothing.
 */
export const ALG_SWITCH = 'pushauth.test.alg';

function preferredAlg() {
  try {
    return localStorage.getItem(ALG_SWITCH) === 'es256' ? 'es256' : 'ed25519';
  } catch {
    return 'ed25519';
  }
}

/** The server's answers that say a token can never be used again. */
const DEAD = new Set(['unknown_enrollment', 'enrollment_used', 'enrollment_expired']);

function linkProblem(err) {
  if (err instanceof OfflineError) return 'The server cannot be reached. Check the connection and open the link again.';
  if (err instanceof ApiError && DEAD.has(err.code)) {
    return 'This enrollment link is unknown, already used or expired. Ask your administrator for a new one.';
  }
  return `This link cannot be used: ${err.message}`;
}

/** Shows the enrollment screen for `token` in `root`. */
export async function showEnroll(root, token) {
  clear(root);
  const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const card = el('section', { class: 'card enroll' }, el('h1', { text: 'Add this phone' }), status);
  root.append(card);
  if (!token) {
    status.textContent = 'This page needs an enrollment link. Scan the QR code your administrator gives you.';
    return;
  }
  status.textContent = 'Checking the link…';
  let info;
  try {
    info = await publicRequest('GET', `/v1/device/enrollment?token=${encodeURIComponent(token)}`);
  } catch (err) {
    status.textContent = linkProblem(err);
    status.classList.add('error');
    // A dead token has no reason to stay in the address bar.
    history.replaceState(null, '', '/enroll');
    return;
  }
  status.textContent = '';
  const expires = new Date(info.expires_at);
  const name = el('input', {
    id: 'device-name', name: 'device-name', type: 'text', maxlength: 64, required: true,
    autocomplete: 'off', value: defaultDeviceName(),
  });
  const button = el('button', { type: 'submit', class: 'primary', id: 'enroll-button', text: 'Enroll' });
  const form = el('form', { class: 'stack', id: 'enroll-form' },
    el('dl', { class: 'facts' },
      // The origin, not the server's word: the app talks to and keeps its key for this origin only.
      el('dt', { text: 'Server' }), el('dd', { id: 'enroll-server', text: location.origin }),
      el('dt', { text: 'Account' }), el('dd', { id: 'enroll-user', text: visible(info.user) }),
      el('dt', { text: 'Link valid until' }), el('dd', { text: expires.toLocaleString() })),
    el('label', { for: 'device-name', text: 'Name of this phone' }),
    name,
    el('p', { class: 'hint', text: 'Others with access to this account will see this name when this phone is added.' }),
    button);
  card.insertBefore(form, status);
  if (info.server !== location.origin) {
    // An honest setup has public_url = the address phones open; a difference is worth a look.
    form.insertBefore(el('p', { class: 'hint', id: 'enroll-server-name', text: `The server calls itself ${visible(info.server)}; this phone reaches it as ${location.origin}.` }), name.previousSibling);
  }
  // The same link twice, or a second link for a user this app already approves for, would
  // make a second device for the same account: say so before it happens.
  // Every account of this app belongs to this origin, so the user name alone decides.
  const held = (await listAccounts().catch(() => [])).filter((a) => a.user === info.user);
  if (held.length > 0) {
    form.insertBefore(el('p', {
      class: 'error', id: 'enroll-duplicate', role: 'alert',
      text: `This app already approves logins for ${visible(info.user)} on this server (as "${visible(held[0].name)}"). Enrolling again adds a second device for the same account; remove the old one in Settings afterwards if this replaces it.`,
    }), button);
  }
  card.append(el('p', { class: 'hint', text: 'Enroll only if you asked for this link and the server and account above are yours. This phone will then approve logins for that account.' }));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const deviceName = name.value.trim();
    if (!deviceName) {
      status.textContent = 'Give this phone a name.';
      return;
    }
    button.disabled = true;
    status.classList.remove('error');
    status.textContent = 'Making this phone\'s key…';
    try {
      const key = await generateDeviceKey(preferredAlg());
      const proof = await signB64(key.alg, key.privateKey, enrollMessage(token, key.alg, key.publicKey));
      status.textContent = 'Enrolling…';
      const done = await publicRequest('POST', '/v1/device/enroll', {
        token, name: deviceName, alg: key.alg, public_key: b64url(key.publicKey), proof,
      });
      await putAccount({
        deviceId: done.device_id,
        user: done.user,
        server: location.origin,
        name: deviceName,
        alg: key.alg,
        publicKey: b64url(key.publicKey),
        fingerprint: await fingerprint(key.publicKey),
        privateKey: key.privateKey,
        // Issue 12: the offline-code secret, as a non-extractable HMAC key.
        offline: await offlineFromEnroll(done.offline),
        createdAt: Date.now(),
      });
      // replace, not assign: the enrollment URL (with its token) leaves history.
      location.replace('/app/#enrolled');
    } catch (err) {
      status.classList.add('error');
      if (err instanceof ApiError && DEAD.has(err.code)) {
        // Used meanwhile (another tab, another phone) or expired: the token is dead, so it
        // leaves the address bar and history here too, and the form goes.
        status.textContent = linkProblem(err);
        history.replaceState(null, '', '/enroll');
        form.remove();
        return;
      }
      button.disabled = false;
      status.textContent = `Enrollment failed: ${err.message}`;
    }
  });
}
