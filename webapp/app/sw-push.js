// The service worker's push and notificationclick handlers (loaded by sw.js with
// importScripts). A push carries only a challenge id ({"challenge_id": "…"}); the lock screen
// shows no login detail. A tap opens (or focuses) the app at that challenge.
'use strict';

const PUSHAUTH_ID = /^[A-Za-z0-9_-]{1,128}$/;

function pushauthChallengeId(data) {
  if (!data) return '';
  let id = '';
  try {
    const json = data.json();
    id = json && typeof json.challenge_id === 'string' ? json.challenge_id : '';
  } catch {
    id = '';
  }
  return PUSHAUTH_ID.test(id) ? id : '';
}

/** waitUntil where the event allows it (a synthetic event in a test does not). */
function pushauthKeepAlive(event, promise) {
  try {
    event.waitUntil(promise);
  } catch {
    /* untrusted event: the promise still runs */
  }
  return promise;
}

self.addEventListener('push', (event) => {
  const id = pushauthChallengeId(event.data);
  pushauthKeepAlive(event, self.registration.showNotification('Login approval requested', {
    body: 'Open pushauth to see who is asking.',
    tag: id ? `challenge-${id}` : 'pushauth',
    renotify: true,
    requireInteraction: true,
    icon: '/app/icon-192.png',
    badge: '/app/icon-192.png',
    data: { challenge: id },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const id = event.notification.data && PUSHAUTH_ID.test(event.notification.data.challenge || '')
    ? event.notification.data.challenge : '';
  const target = new URL(id ? `/app/#challenge=${id}` : '/app/', self.location.origin).href;
  pushauthKeepAlive(event, (async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const open = windows.find((c) => new URL(c.url).pathname.startsWith('/app/'));
    if (open) {
      open.postMessage({ type: 'open-challenge', id });
      try {
        await open.focus();
      } catch {
        /* focus needs the tap's user activation; the message already moved the app */
      }
      return;
    }
    await self.clients.openWindow(target);
  })());
});
