// One pending challenge as a card, in plain words: what is being approved (service, host,
// address, SSH key, sudo command, Keycloak realm and client, message; for an approval asked of
// this person on someone else's behalf, the message first and large), for which account and
// asked by whom, when, how long is left; the code field and the three answers. Every value
// from the context goes in as text (dom.js), never as markup.

import { el, visible } from './dom.js';

const LABELS = [
  ['host', 'Host'],
  ['rhost', 'From address'],
  ['user', 'Login name'],
  ['tty', 'Terminal'],
  ['ssh_key', 'SSH key'],
  ['command', 'Command'],
  ['realm', 'Realm'],
  ['client', 'Application'],
  ['scope', 'Access asked'],
  ['device_name', 'New device'],
  ['message', 'Message'],
  ['requester', 'Requested by'],
  ['target_user', 'Run as'],
  ['reason', 'Reason given'],
  ['service', 'Service'],
];
const SHOWN_ELSEWHERE = new Set(['action']);

/**
 * `text` cut to `max` characters with a visible mark, so that a long value (a requester of up to
 * 1 KiB) cannot push what follows it (the approval's message) off the screen; the full value is
 * still among the details below.
 */
export function shortened(text, max) {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** What the person is asked, in a few words. */
export function titleOf(context) {
  const service = String(context.service || '');
  const host = context.host ? ` on ${visible(context.host)}` : '';
  if (context.action === 'add_device') return 'Add a new device to your account?';
  // Issue 14: someone else acts; this person approves what the message says.
  if (context.action === 'approval') {
    return context.requester ? `Approval asked by ${shortened(visible(context.requester), 64)}` : 'Approval asked of you';
  }
  if (service === 'sshd' || service === 'ssh') return `SSH login${host}`;
  if (service.startsWith('sudo')) return `sudo command${host}`;
  if (service.startsWith('keycloak')) {
    const app = context.client ? ` to ${visible(context.client)}` : '';
    return `Sign-in${app}`;
  }
  if (service === 'pushauthd-push') return `Test login request${host}`;
  if (service) return `Login to ${visible(service)}${host}`;
  return `Login request${host}`;
}

/** "1:05" from milliseconds. */
export function clockText(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, '0')}`;
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  return `${Math.round(s / 60)} min ago`;
}

/** How many digits the login shows for this challenge (`code_length`, else 6). */
export function codeLength(challenge) {
  const n = Number(challenge.code_length);
  return Number.isInteger(n) && n >= 1 && n <= 16 ? n : 6;
}

/**
 * A card for `challenge` of `account`. `onAnswer(decision, code)` is called on a button;
 * returns { node, tick(now), setBusy(bool), showError(text) }.
 */
export function challengeCard(challenge, account, onAnswer) {
  const context = challenge.context || {};
  const created = Date.parse(challenge.created_at);
  const expires = Date.parse(challenge.expires_at);
  const rows = el('dl', { class: 'facts' });
  const seen = new Set();
  const row = (label, value, cls) => {
    rows.append(el('dt', { text: label }), el('dd', { class: cls, text: visible(value) }));
  };
  // An approval's message is what is approved: shown first and large, not as one row of many.
  const approval = context.action === 'approval';
  const lead = approval ? el('p', { class: 'approval-message', text: visible(context.message || '') }) : null;
  if (approval) seen.add('message');
  row('Account', account.user);
  if (challenge.rp_name) row('Asked by', challenge.rp_name);
  for (const [key, label] of LABELS) {
    if (context[key] !== undefined && !seen.has(key)) {
      row(label, context[key], key === 'ssh_key' || key === 'command' ? 'mono' : undefined);
      seen.add(key);
    }
  }
  const asked = el('dd', {});
  const left = el('dd', { class: 'time-left' });
  rows.append(el('dt', { text: 'Asked' }), asked, el('dt', { text: 'Time left' }), left);
  // Anything else the login sent is shown too (nothing it says is hidden from the person), but
  // apart and under its raw key, so that a key named like a label ("account", "Host") cannot
  // pass for one of the fields above.
  const others = Object.keys(context).sort().filter((key) => !seen.has(key) && !SHOWN_ELSEWHERE.has(key));
  const extra = others.length === 0 ? null : el('dl', { class: 'facts extra' });
  for (const key of others) {
    extra.append(el('dt', { class: 'mono', text: visible(key) }), el('dd', { text: visible(context[key]) }));
  }
  const bar = el('progress', { class: 'bar', max: 1000, value: 1000, 'aria-label': 'time left' });

  const length = codeLength(challenge);
  const codeId = `code-${challenge.id}`;
  const code = challenge.code_required ? el('input', {
    id: codeId, class: 'code', name: 'code', type: 'text', inputmode: 'numeric',
    autocomplete: 'one-time-code', pattern: `[0-9]{${length}}`, maxlength: length + 1, 'data-length': length,
    minlength: length, placeholder: '•'.repeat(length), 'aria-label': `the ${length}-digit code shown on the login screen`,
    enterkeyhint: 'done', spellcheck: 'false',
  }) : null;
  const approve = el('button', { type: 'submit', class: 'primary approve', text: 'Approve' });
  const deny = el('button', { type: 'button', class: 'deny', text: 'Deny' });
  const report = el('button', { type: 'button', class: 'report', text: 'This wasn\'t me' });
  const error = el('p', { class: 'error', role: 'alert' });
  const form = el('form', { class: 'stack answer', novalidate: true },
    code ? el('label', { for: codeId, text: `Type the ${length}-digit code shown on the login screen` }) : null,
    code,
    error,
    approve,
    el('div', { class: 'row' }, deny, report));
  const node = el('article', { class: 'card challenge', id: `challenge-${challenge.id}`, 'data-id': challenge.id },
    el('h2', { text: titleOf(context) }),
    lead,
    rows,
    extra ? el('p', { class: 'extra-title', text: 'Other details the login sent' }) : null,
    extra, bar, form);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    // The login shows the code grouped ("482 913"); spaces typed along are not part of it.
    const typed = code ? code.value.replace(/[\s-]/g, '') : '';
    if (code && !new RegExp(`^[0-9]{${length}}$`).test(typed)) {
      error.textContent = `Type the ${length} digits the login screen shows.`;
      code.focus();
      return;
    }
    onAnswer('approve', typed);
  });
  deny.addEventListener('click', () => onAnswer('deny', ''));
  report.addEventListener('click', () => onAnswer('report', ''));
  if (code) {
    code.addEventListener('input', () => {
      error.textContent = '';
      // Digits only: a pasted grouped code ("482 913", one character over the length) fits.
      const digits = code.value.replace(/\D/g, '').slice(0, length);
      if (digits !== code.value) code.value = digits;
    });
  }

  const total = Math.max(1, expires - created);
  return {
    node,
    tick(now = Date.now()) {
      asked.textContent = `${new Date(created).toLocaleTimeString()} (${ago(now - created)})`;
      left.textContent = expires > now ? clockText(expires - now) : 'expired';
      bar.value = Math.round(1000 * Math.max(0, Math.min(1, (expires - now) / total)));
      bar.classList.toggle('low', expires - now < 15000);
    },
    setBusy(busy) {
      for (const b of [approve, deny, report]) b.disabled = busy;
      if (code) code.disabled = busy;
    },
    showError(text) {
      error.textContent = text;
    },
  };
}

/** The outcome of an answer, in plain words: { title, text, tone }. */
export function outcomeText(status, decision, context) {
  const where = titleOf(context || {});
  if (status.state === 'approved') {
    return { tone: 'ok', title: 'Approved', text: `${where}: the login continues.` };
  }
  if (status.state === 'denied' && status.reason === 'code_mismatch') {
    return { tone: 'bad', title: 'The code did not match', text: 'The login was refused. If you did not start it, use "This wasn\'t me" next time.' };
  }
  if (status.state === 'denied' && (status.reason === 'reported' || decision === 'report')) {
    return { tone: 'bad', title: 'Reported', text: 'The login was refused and reported to your administrator. Login requests to you pause for a while.' };
  }
  if (status.state === 'denied') return { tone: 'bad', title: 'Denied', text: `${where}: the login was refused.` };
  if (status.state === 'expired') return { tone: 'bad', title: 'Expired', text: 'This request ran out of time before it was answered.' };
  if (status.state === 'cancelled') return { tone: 'bad', title: 'Cancelled', text: 'The login gave up before it was answered.' };
  return { tone: 'bad', title: 'Not answered', text: `The request is ${status.state}.` };
}
