// "Recent activity" in Settings: what the server tells this account's devices from the last
// 30 days (signed `GET /v1/device/notices?kinds=all`): devices added, backup codes used or
// issued, and kinds this version does not know yet, shown generically. All of it came from the
// server, so every value is a text node through visible().

import { el, visible } from './dom.js';
import { deviceRequest } from './api.js';

function when(at) {
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? visible(String(at)) : date.toLocaleString();
}

function where(context) {
  const pairs = Object.entries(context || {}).map(([k, v]) => `${visible(k)}=${visible(String(v))}`);
  return pairs.length ? ` (${pairs.join(', ')})` : '';
}

/** One notice in words. */
export function noticeText(n) {
  const at = when(n.at);
  const via = n.via ? ` via ${visible(n.via)}` : '';
  switch (n.kind) {
    case 'device_added':
      return `New device "${visible(n.device_name || '?')}" added on ${at} from ${visible(n.source || 'an unknown address')}${via}.`;
    case 'backup_code_used':
      return `A backup code was used on ${at}${where(n.context)}${n.count !== undefined ? `; ${n.count} unused codes left` : ''}.`;
    case 'backup_codes_issued':
      return `A new set of ${n.count ?? '?'} backup codes was issued on ${at}${via}; the old codes no longer work.`;
    case 'backup_codes_voided':
      return `Every backup code was voided on ${at}${via}; none work until a new set is issued.`;
    default:
      return `${visible(String(n.kind))} on ${at}${via}${where(n.context)}.`;
  }
}

/** The "Recent activity" card of `account`; fills itself when the server answers. */
export function noticesCard(account) {
  const list = el('ul', { class: 'notices' });
  const status = el('p', { class: 'hint', text: 'Loading…' });
  deviceRequest(account, 'GET', '/v1/device/notices?kinds=all').then((answer) => {
    const notices = answer && Array.isArray(answer.notices) ? answer.notices : [];
    for (const n of notices.slice(0, 20)) list.append(el('li', { text: noticeText(n) }));
    status.textContent = notices.length ? 'If something here was not you, tell your administrator.' : 'Nothing in the last 30 days.';
  }).catch((err) => { status.textContent = `Cannot read the activity: ${visible(err.message)}`; });
  return el('section', { class: 'card activity', 'data-device': account.deviceId },
    el('h2', { text: `Recent activity: ${visible(account.user)}` }), list, status);
}
