// Offline codes (issue 12): HOTP (RFC 4226) codes this phone shows when the push server cannot
// be reached, typed at the login prompt that asks for them. The secret arrives once, in the
// enrollment answer, and is imported here as a NON-extractable WebCrypto HMAC key (SHA-256 or
// SHA-1, as the server says): IndexedDB keeps the CryptoKey with the account, and no script
// can read its bytes back. The counter is stored before a code is shown, so none is shown twice.
// proto/test-vectors.json (`hotp`) is the contract: tests/web runs it through this module.

import { fromB64url } from './bytes.js';
import { el, visible } from './dom.js';
import { putAccount } from './keystore.js';

const HASHES = { sha1: 'SHA-1', sha256: 'SHA-256' };

/** Imports a base64url secret as a non-extractable HMAC key for `algorithm` (sha1|sha256). */
export async function importOfflineSecret(secretB64, algorithm) {
  const hash = HASHES[algorithm];
  if (!hash) throw new Error(`unknown offline code algorithm ${algorithm}`);
  const raw = fromB64url(secretB64);
  try {
    return await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash }, false, ['sign']);
  } finally {
    raw.fill(0);
  }
}

/** HOTP(key, counter) as `digits` decimal digits (RFC 4226 §5.3, dynamic truncation). */
export async function hotp(key, counter, digits) {
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) throw new Error(`offline codes have 6 to 8 digits, not ${digits}`);
  const message = new Uint8Array(8);
  new DataView(message.buffer).setBigUint64(0, BigInt(counter));
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, message));
  const offset = mac[mac.length - 1] & 0x0f;
  const number = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(number % 10 ** digits).padStart(digits, '0');
}

/** A code as people read it: `123 456`, `123 4567`, `1234 5678`. */
export function groupCode(code) {
  const split = code.length === 8 ? 4 : 3;
  return `${code.slice(0, split)} ${code.slice(split)}`;
}

/** The account's `offline` field from the enroll answer's `offline` (or null). */
export async function offlineFromEnroll(offline) {
  if (!offline) return null;
  return {
    key: await importOfflineSecret(offline.secret, offline.algorithm),
    digits: offline.digits,
    algorithm: offline.algorithm,
    counter: offline.counter,
  };
}

/** The next code of `account`: its counter is advanced and saved first. */
export async function nextOfflineCode(account) {
  const counter = account.offline.counter + 1;
  const code = await hotp(account.offline.key, counter, account.offline.digits);
  account.offline = { ...account.offline, counter };
  await putAccount(account);
  return { code, counter };
}

/** The Settings entry "Offline code" of `account`. */
export function offlineSection(account) {
  if (!account.offline) {
    return el('p', { class: 'hint offline-none', text: 'No offline codes for this account (enrolled before they existed, or the server has them off).' });
  }
  const shown = el('p', { class: 'offline-code mono', 'aria-live': 'polite' });
  const button = el('button', { type: 'button', class: 'secondary offline-button', text: 'Offline code' });
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const { code, counter } = await nextOfflineCode(account);
      shown.textContent = groupCode(code);
      shown.dataset.counter = String(counter);
    } catch (err) {
      shown.textContent = `No code: ${visible(err.message)}`;
    } finally {
      button.disabled = false;
    }
  });
  return el('div', { class: 'offline stack' }, button, shown,
    el('p', { class: 'hint', text: 'Only when a login says the push server cannot be reached: type this code there. Each code works once; no network needed.' }));
}
