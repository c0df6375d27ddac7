// Placeholder app module (h4 replaces it): starts the release check and shows its result.
import { startRelease, releaseInfo, onReleaseChange } from './release.js';

const status = document.getElementById('status');
function show(info) {
  if (!status) return;
  status.textContent = `pushauth ${info.version || '(not installed)'} ${info.status}` +
    (info.refusal ? ` refused: ${info.refusal.reason}` : '');
}
onReleaseChange(show);
startRelease().then(releaseInfo).then(show, (e) => {
  if (status) status.textContent = `service worker: ${e.message}`;
});
