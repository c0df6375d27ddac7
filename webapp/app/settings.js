// Settings: per account the device name, key algorithm and fingerprint, and "Remove this
// device" (a signed `DELETE /v1/device`, after a confirmation; the account then leaves this
// app); new backup codes (backup.js); recent activity (notices.js); notifications; the app's version and release-key fingerprint (release.js).

import { el, clear, visible } from './dom.js';
import { ApiError, deviceRequest } from './api.js';
import { deleteAccount } from './keystore.js';
import { enableNotifications, notificationState } from './push.js';
import { backupCard } from './backup.js';
import { noticesCard } from './notices.js';

async function releaseFacts() {
  try {
    return await (await import('./release.js')).releaseInfo();
  } catch {
    return null;
  }
}

function accountCard(account, onRemoved) {
  const status = el('p', { class: 'status', role: 'status' });
  const remove = el('button', { type: 'button', class: 'danger', text: 'Remove this device' });
  const confirmBox = el('div', { class: 'confirm stack', hidden: true },
    el('p', { text: `Remove this phone from ${account.user}? It will no longer approve logins for this account, and its key is deleted from this phone.` }));
  const yes = el('button', { type: 'button', class: 'danger', text: 'Yes, remove it' });
  const no = el('button', { type: 'button', class: 'secondary', text: 'Cancel' });
  confirmBox.append(el('div', { class: 'row' }, no, yes));
  remove.addEventListener('click', () => { confirmBox.hidden = false; remove.hidden = true; });
  no.addEventListener('click', () => { confirmBox.hidden = true; remove.hidden = false; });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    no.disabled = true;
    status.textContent = 'Removing…';
    let notice = null;
    try {
      await deviceRequest(account, 'DELETE', '/v1/device');
    } catch (err) {
      // Already removed on the server: forgetting it here is what is left to do. Otherwise the
      // key goes all the same (the person asked that this phone stop approving, and a key
      // kept because the server was unreachable would still approve later), and the person
      // learns that the server still lists the device.
      const gone = err instanceof ApiError && (err.code === 'device_revoked' || err.code === 'unknown_device');
      if (!gone) {
        notice = `This phone's key for ${account.user} was deleted, but the server could not be told (${err.message}). ` +
          `It still lists this device (id ${account.deviceId}, "${account.name}"): ask your administrator to revoke it (pushauthd revoke ${account.deviceId}).`;
      }
    }
    try {
      await deleteAccount(account.deviceId);
    } catch (err) {
      status.textContent = `The key could not be deleted from this phone: ${err.message}`;
      yes.disabled = false;
      no.disabled = false;
      return;
    }
    onRemoved(account, notice);
  });
  return el('section', { class: 'card account', 'data-device': account.deviceId },
    el('h2', { text: visible(account.user) }),
    el('dl', { class: 'facts' },
      el('dt', { text: 'Server' }), el('dd', { text: visible(account.server || location.origin) }),
      el('dt', { text: 'Device name' }), el('dd', { class: 'device-name', text: visible(account.name) }),
      el('dt', { text: 'Key' }), el('dd', { text: account.alg === 'es256' ? 'ECDSA P-256 (es256)' : 'Ed25519' }),
      el('dt', { text: 'Key fingerprint' }), el('dd', { class: 'mono fingerprint', text: account.fingerprint || '' }),
      el('dt', { text: 'Enrolled' }), el('dd', { text: new Date(account.createdAt).toLocaleString() })),
    el('p', { class: 'hint', text: 'Your administrator sees the same fingerprint for this device; compare them if in doubt.' }),
    remove, confirmBox, status);
}

/** The last update check in words (the raw status stays in `data-status`). */
function updateWords(release) {
  if (!release) return 'Not known';
  const when = release.checkedAt ? ` (checked ${new Date(release.checkedAt).toLocaleTimeString()})` : '';
  switch (release.status) {
    case 'current': return `Up to date${when}`;
    case 'updated': return `Updated to this version${when}`;
    case 'refused': return `An update was refused${when}; see below`;
    case 'unreachable': return `Could not ask the server${when}`;
    case 'not-installed': return 'Not installed yet: the app cannot open offline until it is';
    default: return 'Not checked yet';
  }
}

/** A notice the person must read after a removal (the server was not told), as a card. */
export function removalNotice(text) {
  return el('section', { class: 'card result bad', id: 'removal-notice', role: 'alert' },
    el('h2', { text: 'Removed from this phone only' }), el('p', { text: visible(text) }));
}

/**
 * Shows the settings of `accounts`; `onRemoved(account, notice)` after a removal (`notice`:
 * text to show when the server was not told, else null). `notice` here: shown on top.
 */
export async function showSettings(root, accounts, onRemoved, notice = null) {
  clear(root);
  root.append(el('h1', { class: 'screen-title', text: 'Settings' }));
  if (notice) root.append(removalNotice(notice));
  for (const account of accounts) root.append(accountCard(account, onRemoved), backupCard(account), noticesCard(account));

  const notifyText = el('p', { id: 'notify-state' });
  const notifyButton = el('button', { type: 'button', class: 'primary', id: 'notify-on', text: 'Turn on notifications' });
  root.append(el('section', { class: 'card' }, el('h2', { text: 'Notifications' }), notifyText, notifyButton,
    el('p', { class: 'hint', text: 'A notification says only "Login approval requested"; the details stay in the app.' })));
  const refresh = async () => {
    const state = await notificationState();
    notifyText.textContent = state.text;
    notifyButton.hidden = state.on;
  };
  notifyButton.addEventListener('click', async () => {
    notifyButton.disabled = true;
    try {
      await enableNotifications(accounts);
      await refresh();
    } catch (err) {
      notifyText.textContent = err.message;
    } finally {
      notifyButton.disabled = false;
    }
  });
  refresh().catch((err) => { notifyText.textContent = err.message; });

  const release = await releaseFacts();
  const about = el('dl', { class: 'facts' },
    el('dt', { text: 'Version' }), el('dd', { id: 'app-version', text: release && release.version ? visible(release.version) : 'not installed yet' }),
    el('dt', { text: 'Release key' }), el('dd', { id: 'release-key', class: 'mono', text: release && release.fingerprint ? visible(release.fingerprint) : 'unknown' }),
    el('dt', { text: 'Updates' }), el('dd', { id: 'update-status', 'data-status': release ? release.status : 'unknown', text: updateWords(release) }));
  const aboutCard = el('section', { class: 'card' }, el('h2', { text: 'About this app' }), about,
    el('p', { class: 'hint', text: 'This app takes an update only when it is signed by the release key above. Compare the fingerprint with the one your administrator publishes.' }));
  if (release && release.development) aboutCard.append(el('p', { class: 'error', text: 'Development build: signed with a development key, not a packager\'s release key.' }));
  if (release && release.refusal) aboutCard.append(el('p', { class: 'error', text: `Update ${visible(release.refusal.version || '')} refused: ${visible(release.refusal.reason)}` }));
  if (release && release.warning) aboutCard.append(el('p', { class: 'error', text: visible(release.warning) }));
  root.append(aboutCard);
}
