// Page side of the release check: registers the service worker and reports the release.
export async function startRelease() {
  if (!('serviceWorker' in navigator)) return null;
  return navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' });
}
