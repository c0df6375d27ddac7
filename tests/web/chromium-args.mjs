// The flags Debian's Chromium needs on this kind of machine (closed network, root): see
// /work/.library/env/machines/polyglot.md, "End-to-end tests in headless Chromium".
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
