// Grace windows (issue 12): "End all grace windows" for an account, a signed
// `DELETE /v1/device/grace`. After it, the next login of this account on every host asks this
// phone again, even from a place that was approved a moment ago.

import { el, visible } from './dom.js';
import { deviceRequest } from './api.js';

/** A card with the button that ends every grace window of `account`. */
export function graceCard(account) {
  const status = el('p', { class: 'status', role: 'status' });
  const end = el('button', { type: 'button', class: 'secondary', text: 'End all grace windows' });
  end.addEventListener('click', async () => {
    end.disabled = true;
    status.textContent = 'Ending…';
    try {
      await deviceRequest(account, 'DELETE', '/v1/device/grace');
      status.textContent = 'Done: the next login asks this phone again.';
    } catch (err) {
      status.textContent = `Could not end them: ${visible(String(err.message))}`;
    } finally {
      end.disabled = false;
    }
  });
  return el('section', { class: 'card grace', 'data-device': account.deviceId },
    el('h2', { text: `Grace windows of ${visible(account.user)}` }),
    el('p', { class: 'hint', text: 'Hosts may let a repeated login in for a few minutes after you approved the same login. End that now if something looks wrong.' }),
    end, status);
}
