// Placeholder app module (h4 replaces it): registers the service worker and shows the release.
import { startRelease } from './release.js';

const status = document.getElementById('status');
if (status) status.textContent = 'pushauth placeholder app';
startRelease();
