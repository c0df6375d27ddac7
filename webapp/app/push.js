// Notifications: permission, a Web Push subscription made with the server's VAPID key
// (`GET /v1/push/vapid`), and the subscription registered for each account over the signed
// device API (`PUT /v1/device/push-subscription`; one per device, a new one replaces the old).

import { fromB64url } from './bytes.js';
import { deviceRequest, publicRequest } from './api.js';

/** Why notifications cannot work here, or null when they can. */
export function notificationsUnsupported() {
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) {
    const ios = /iPhone|iPad/.test(navigator.userAgent);
    return ios
      ? 'On iPhone and iPad, notifications work only after "Add to Home Screen" (Share menu, iOS 16.4 or later); open pushauth from the home screen, then turn them on here.'
      : 'This browser cannot receive push notifications. Keep the app open to see requests.';
  }
  return null;
}

/** The current state in words, for the settings screen. */
export async function notificationState() {
  const unsupported = notificationsUnsupported();
  if (unsupported) return { on: false, text: unsupported };
  if (Notification.permission === 'denied') {
    return { on: false, text: 'Notifications are blocked for this site. Allow them in the browser\'s site settings.' };
  }
  const reg = await navigator.serviceWorker.getRegistration('/app/');
  const sub = reg && await reg.pushManager.getSubscription();
  if (Notification.permission === 'granted' && sub) return { on: true, text: 'On: this phone is woken when a login asks.' };
  return { on: false, text: 'Off: requests appear only while the app is open.' };
}

/** Registers a subscription (its `toJSON()` form) for one account. */
export function registerSubscription(account, json) {
  const body = { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
  return deviceRequest(account, 'PUT', '/v1/device/push-subscription', body);
}

/** Asks for permission, subscribes and registers the subscription for every account. */
export async function enableNotifications(accounts) {
  const unsupported = notificationsUnsupported();
  if (unsupported) throw new Error(unsupported);
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new Error('Notifications were not allowed.');
  const reg = await navigator.serviceWorker.ready;
  const { public_key: vapid } = await publicRequest('GET', '/v1/push/vapid');
  let sub = await reg.pushManager.getSubscription();
  if (!sub) {
    sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromB64url(vapid) });
  }
  const json = sub.toJSON();
  for (const account of accounts) await registerSubscription(account, json);
  return sub;
}
