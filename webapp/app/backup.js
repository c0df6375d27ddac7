// "New backup codes" in Settings (issue 12): after a confirmation, a signed
// `POST /v1/device/backup-codes` (this phone is the approval) returns a new set, shown once
// with a copy button; every earlier code stops working. The codes are never stored here.

import { el, visible } from './dom.js';
import { deviceRequest } from './api.js';

/** A code as the server shows it: letters, digits and dashes only, or it is not shown. */
const PLAIN = /^[A-Z0-9-]{1,32}$/;

/** The backup-code card of `account`. */
export function backupCard(account) {
  const status = el('p', { class: 'status', role: 'status' });
  const start = el('button', { type: 'button', class: 'secondary', text: 'New backup codes' });
  const confirmBox = el('div', { class: 'confirm stack', hidden: true },
    el('p', { text: `Make new backup codes for ${visible(account.user)}? Every backup code you have now stops working.` }));
  const yes = el('button', { type: 'button', class: 'primary', text: 'Yes, make new codes' });
  const no = el('button', { type: 'button', class: 'secondary', text: 'Cancel' });
  confirmBox.append(el('div', { class: 'row' }, no, yes));
  const shown = el('div', { class: 'stack backup-codes', hidden: true });
  start.addEventListener('click', () => { confirmBox.hidden = false; start.hidden = true; status.textContent = ''; });
  no.addEventListener('click', () => { confirmBox.hidden = true; start.hidden = false; });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    no.disabled = true;
    status.textContent = 'Asking the server…';
    try {
      const set = await deviceRequest(account, 'POST', '/v1/device/backup-codes', {});
      const codes = set && Array.isArray(set.codes) ? set.codes : [];
      if (!codes.length || !codes.every((c) => typeof c === 'string' && PLAIN.test(c))) {
        throw new Error('the server sent no usable codes');
      }
      showCodes(shown, status, codes, () => { start.hidden = false; });
      confirmBox.hidden = true;
      status.textContent = '';
    } catch (err) {
      status.textContent = `No new codes: ${visible(err.message)}`;
      confirmBox.hidden = true;
      start.hidden = false;
    } finally {
      yes.disabled = false;
      no.disabled = false;
    }
  });
  return el('section', { class: 'card backup', 'data-device': account.deviceId },
    el('h2', { text: 'Backup codes' }),
    el('p', { class: 'hint', text: 'If this phone is lost, type a backup code at the login prompt instead of approving, or use one to add a new phone. Each works once.' }),
    start, confirmBox, shown, status);
}

/** Shows `codes` once, with a copy button and a "Done" that hides them for good (then `onDone`). */
function showCodes(box, status, codes, onDone) {
  const list = el('ol', { class: 'mono codes' });
  for (const code of codes) list.append(el('li', { text: code }));
  const copy = el('button', { type: 'button', class: 'secondary', text: 'Copy' });
  const done = el('button', { type: 'button', class: 'primary', text: 'Done' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(codes.join('\n'));
      status.textContent = 'Copied. Paste them somewhere offline, then clear the clipboard.';
    } catch {
      status.textContent = 'Copying is not allowed here: write the codes down instead.';
    }
  });
  done.addEventListener('click', () => {
    box.replaceChildren();
    box.hidden = true;
    status.textContent = 'The codes are no longer shown. Make new ones if you did not store them.';
    onDone();
  });
  box.replaceChildren(
    el('p', { text: 'Your new backup codes, shown only now. Print them or write them down and keep them away from this phone:' }),
    list, el('div', { class: 'row' }, copy, done));
  box.hidden = false;
}
