// The requests screen: for each account a long-poll of `GET /v1/device/challenges?wait=25`
// (signed), a card per open challenge (acknowledged when shown), the signed answer, and the
// result in plain words. Reports whether the server can be reached, for the offline notice.

import { el, clear, visible } from './dom.js';
import { ApiError, OfflineError, deviceRequest } from './api.js';
import { BadContext, DigestMismatch, UserMismatch, signedAnswer } from './answer.js';
import { challengeCard, outcomeText } from './challenge-view.js';

const ID = /^[A-Za-z0-9_-]{1,128}$/;
const WAIT_SECS = 25;

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

function problem(err) {
  if (err instanceof DigestMismatch || err instanceof UserMismatch || err instanceof BadContext) return `Refused: ${err.message}.`;
  if (err instanceof OfflineError) return 'The server cannot be reached; nothing was sent. Try again when you are online.';
  if (err instanceof ApiError) {
    if (err.code === 'stale_timestamp') return 'This phone\'s clock is wrong; set it to the right time and try again.';
    if (err.code === 'user_locked') return 'Too many wrong codes were typed for this account, so it is locked and this request cannot be approved. Deny it or report it; your administrator can unlock the account.';
    return err.message;
  }
  return String(err && err.message ? err.message : err);
}

/** The list of challenges of every account, kept current by one long-poll per account. */
export class Inbox {
  /** `onConnection(ok, account)` is told after each poll whether the server answered. */
  constructor(root, onConnection) {
    this.root = root;
    this.onConnection = onConnection;
    this.entries = new Map();
    this.abort = new AbortController();
    this.want = null;
    this.list = el('div', { class: 'list', id: 'challenges' });
    this.empty = el('section', { class: 'card empty', id: 'empty' },
      el('h2', { text: 'No login requests' }),
      el('p', { text: 'When you log in somewhere that asks pushauth, the request appears here. Keep this app open, or turn notifications on in Settings.' }));
    this.accountsNote = el('p', { class: 'hint', id: 'accounts-note' });
    this.timer = setInterval(() => this.tick(), 1000);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        for (const e of this.entries.values()) this.ack(e);
      }
    });
  }

  /** Starts polling for every account and shows the list. */
  start(accounts) {
    clear(this.root);
    this.root.append(this.list, this.empty, this.accountsNote);
    this.accountsNote.textContent = accounts.length === 1
      ? `Approving for ${accounts[0].user}.`
      : `Approving for ${accounts.map((a) => a.user).join(', ')}.`;
    for (const account of accounts) this.poll(account);
    this.refreshEmpty();
  }

  /** Stops every poll. */
  stop() {
    this.abort.abort();
    clearInterval(this.timer);
  }

  /** Brings challenge `id` to the front (now, or when it arrives). */
  focus(id) {
    if (!ID.test(id)) return;
    this.want = id;
    const entry = this.entries.get(id);
    if (!entry) return;
    for (const e of this.entries.values()) e.node.classList.remove('focus');
    entry.node.classList.add('focus');
    entry.node.scrollIntoView({ block: 'start' });
    const code = entry.node.querySelector('input.code');
    if (code) code.focus({ preventScroll: true });
    this.want = null;
  }

  async poll(account) {
    let backoff = 1000;
    const { signal } = this.abort;
    while (!signal.aborted) {
      try {
        const path = `/v1/device/challenges?wait=${WAIT_SECS}`;
        const list = await deviceRequest(account, 'GET', path, undefined, signal);
        backoff = 1000;
        this.onConnection(true, account);
        const unacked = this.update(account, Array.isArray(list && list.challenges) ? list.challenges : []);
        // A pending challenge makes the server answer at once: do not spin while it waits.
        if (unacked) await sleep(2000, signal);
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof OfflineError) {
          this.onConnection(false, account);
        } else if (err instanceof ApiError && (err.code === 'device_revoked' || err.code === 'unknown_device')) {
          this.onConnection(true, account);
          this.gone(account);
          return;
        } else {
          console.error('pushauth: polling failed', err);
          this.onConnection(true, account, problem(err));
        }
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 15000);
      }
    }
  }

  gone(account) {
    const note = el('section', { class: 'card result bad' },
      el('h2', { text: 'This phone was removed' }),
      el('p', { text: `The server no longer accepts this phone for ${account.user}. Remove the account in Settings, or enroll again with a new link.` }));
    this.list.append(note);
    this.refreshEmpty();
  }

  update(account, challenges) {
    let unacked = false;
    const live = new Set();
    for (const c of challenges) {
      if (!c || typeof c.id !== 'string' || !ID.test(c.id)) continue;
      live.add(c.id);
      let entry = this.entries.get(c.id);
      if (!entry) {
        entry = { id: c.id, account, challenge: c, done: false, acked: c.state !== 'pending' };
        entry.card = challengeCard(c, account, (decision, code) => this.answer(entry, decision, code));
        entry.node = entry.card.node;
        entry.card.tick();
        this.entries.set(c.id, entry);
        this.list.append(entry.node);
      }
      if (c.state === 'pending' && !entry.acked) {
        if (!this.ack(entry)) unacked = true;
      }
    }
    for (const [id, entry] of this.entries) {
      if (entry.account.deviceId === account.deviceId && !entry.done && !entry.answering && !live.has(id)) {
        // Decided elsewhere, expired or cancelled: say so instead of letting it vanish.
        entry.done = true;
        this.finish(entry, { tone: 'bad', title: 'No longer waiting', text: 'This request ended: answered on another device, expired or cancelled.' });
      }
    }
    if (this.want) this.focus(this.want);
    this.refreshEmpty();
    return unacked;
  }

  /** Acknowledges a shown challenge (pending → acknowledged) while the page is visible. */
  ack(entry) {
    if (entry.acked || entry.done) return true;
    if (document.visibilityState !== 'visible') return false;
    entry.acked = true;
    deviceRequest(entry.account, 'POST', `/v1/device/challenges/${entry.id}/ack`)
      .catch(() => { entry.acked = false; });
    return true;
  }

  async answer(entry, decision, code) {
    if (entry.done || entry.answering) return;
    // While the answer is in flight the list may already miss the challenge: the answer's own
    // result is what the person should see.
    entry.answering = true;
    entry.card.setBusy(true);
    entry.card.showError('');
    try {
      const body = await signedAnswer(entry.account, entry.challenge, decision, code);
      const status = await deviceRequest(entry.account, 'POST', `/v1/device/challenges/${entry.id}/response`, body);
      entry.done = true;
      this.finish(entry, outcomeText(status, decision, entry.challenge.context), true);
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'wrong_state' || err.code === 'expired')) {
        entry.done = true;
        this.finish(entry, { tone: 'bad', title: 'Too late', text: `${err.message}.` });
        return;
      }
      entry.card.setBusy(false);
      entry.card.showError(problem(err));
    } finally {
      entry.answering = false;
    }
  }

  finish(entry, outcome, answered = false) {
    const done = el('button', { type: 'button', class: 'secondary', text: 'Done' });
    const context = entry.challenge.context || {};
    const facts = [`Account ${entry.account.user}`];
    if (context.rhost) facts.push(`from ${context.rhost}`);
    if (answered) facts.push(`answered at ${new Date().toLocaleTimeString()}`);
    const node = el('article', { class: `card result ${outcome.tone}`, id: `result-${entry.id}`, 'data-id': entry.id, role: 'status' },
      el('h2', { text: outcome.title }),
      el('p', { text: outcome.text }),
      el('p', { class: 'hint', text: visible(facts.join(' · ')) }),
      done);
    done.addEventListener('click', () => {
      node.remove();
      this.entries.delete(entry.id);
      this.refreshEmpty();
    });
    entry.node.replaceWith(node);
    entry.node = node;
    this.refreshEmpty();
  }

  tick() {
    const now = Date.now();
    for (const e of this.entries.values()) if (!e.done) e.card.tick(now);
  }

  refreshEmpty() {
    this.empty.hidden = this.list.children.length > 0;
  }
}
