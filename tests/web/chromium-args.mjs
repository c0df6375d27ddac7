// The flags Debian's Chromium needs here (closed network, running as root): without the
// background-networking flags Chromium keeps trying to reach Google's hosts, and as root it needs
// --no-sandbox. The Keycloak suite starts Chromium with the same flags.
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
