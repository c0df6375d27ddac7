// pushauth service worker (scope /app/). First version: caches the app shell at install and
// serves it cache-first; never touches /v1/* (the API is never cached). Signed updates follow.
'use strict';
importScripts('sw-push.js');

const CACHE = 'pushauth-app-v1';
const SHELL = ['./', 'index.html', 'app.js', 'release.js'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith('/app/')) return;
  if (event.request.method !== 'GET') return;
  event.respondWith(
    caches.match(event.request, { ignoreSearch: true }).then((hit) => hit || fetch(event.request)),
  );
});
