// pushauth release checks, shared by the service worker (importScripts) and the tests (node).
// Pure functions over bytes: parse and check a release manifest, verify its signature with
// WebCrypto (ECDSA P-256, SHA-256, the 64-byte r||s form), hash files, and decide whether an
// offered release may replace the installed one. Nothing here touches the network or storage.
'use strict';
(function (root) {
  const FILE_PATH = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;
  const HEX64 = /^[0-9a-f]{64}$/;
  const RESERVED = new Set(['release.json', 'release.sig']);
  // Files the browser runs as the worker itself: never served to pages from the cache.
  const WORKER_FILES = ['sw.js', 'sw-push.js', 'release-verify.js'];
  const TYPES = {
    html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8',
    mjs: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8',
    json: 'application/json', webmanifest: 'application/manifest+json',
    svg: 'image/svg+xml', png: 'image/png', ico: 'image/x-icon',
    txt: 'text/plain; charset=utf-8', woff2: 'font/woff2',
  };
  const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; frame-ancestors 'none'; " +
    "base-uri 'none'; form-action 'none'";

  class Refusal extends Error {}

  const subtle = () => root.crypto.subtle;

  function b64urlDecode(text) {
    if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text)) throw new Refusal('bad base64url');
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
    const bin = root.atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function b64(bytes) {
    let bin = '';
    for (const b of bytes) bin += String.fromCharCode(b);
    return root.btoa(bin);
  }

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  async function sha256hex(bytes) {
    return hex(await subtle().digest('SHA-256', bytes));
  }

  /** `SHA256:` and the unpadded base64 of the SHA-256 of the raw public key (65 bytes). */
  async function fingerprint(keyB64url) {
    const digest = await subtle().digest('SHA-256', b64urlDecode(keyB64url));
    return 'SHA256:' + b64(new Uint8Array(digest)).replace(/=+$/, '');
  }

  /** Parses manifest bytes and checks their shape; throws Refusal naming what is wrong. */
  function parseManifest(bytes) {
    let m;
    try {
      m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch (e) {
      throw new Refusal('the release manifest is not JSON');
    }
    if (!m || typeof m !== 'object' || m.format !== 1) throw new Refusal('unknown release manifest format');
    if (typeof m.version !== 'string' || m.version.length === 0 || m.version.length > 100) {
      throw new Refusal('the release manifest has no version');
    }
    if (!Number.isSafeInteger(m.released) || m.released < 0) throw new Refusal('the release manifest has no release time');
    if (typeof m.development !== 'boolean') throw new Refusal('the release manifest does not say whether it is a development build');
    const key = b64urlDecode(m.release_key);
    if (key.length !== 65 || key[0] !== 4) throw new Refusal('the release key is not an uncompressed P-256 point');
    if (!m.files || typeof m.files !== 'object' || Array.isArray(m.files)) throw new Refusal('the release manifest lists no files');
    const names = Object.keys(m.files);
    if (names.length === 0 || names.length > 500) throw new Refusal('the release manifest lists no files');
    for (const name of names) {
      if (!FILE_PATH.test(name) || RESERVED.has(name) || name.length > 200) throw new Refusal(`bad file name in the release manifest: ${name}`);
      if (!HEX64.test(m.files[name])) throw new Refusal(`bad hash for ${name} in the release manifest`);
      if (!typeOf(name)) throw new Refusal(`file type not allowed: ${name}`);
    }
    if (!own(m.files, 'index.html') || !own(m.files, 'sw.js')) throw new Refusal('the release has no index.html or sw.js');
    return m;
  }

  /** The signatures in release.sig: one or more 64-byte r||s values, each over release.json. */
  function splitSignatures(sigBytes) {
    const sig = new Uint8Array(sigBytes);
    if (sig.length === 0 || sig.length % 64 !== 0 || sig.length > 64 * 4) throw new Refusal('the release signature is malformed');
    const out = [];
    for (let i = 0; i < sig.length; i += 64) out.push(sig.slice(i, i + 64));
    return out;
  }

  async function importKey(keyB64url) {
    try {
      return await subtle().importKey('raw', b64urlDecode(keyB64url), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    } catch (e) {
      throw new Refusal('the release key is not a P-256 public key');
    }
  }

  /** Whether any signature in `sigBytes` over `manifestBytes` verifies with `keyB64url`. */
  async function signedBy(keyB64url, manifestBytes, sigBytes) {
    const key = await importKey(keyB64url);
    for (const sig of splitSignatures(sigBytes)) {
      if (await subtle().verify({ name: 'ECDSA', hash: 'SHA-256' }, key, sig, manifestBytes)) return true;
    }
    return false;
  }

  /**
   * First install (trust on first use): the manifest must be well formed and its first
   * signature must verify with the key it carries (a release that is at least consistent).
   */
  async function checkFirst(manifestBytes, sigBytes) {
    const m = parseManifest(manifestBytes);
    const [first] = splitSignatures(sigBytes);
    if (!(await signedBy(m.release_key, manifestBytes, first))) {
      throw new Refusal('the release signature does not verify with the release key it names');
    }
    return m;
  }

  /**
   * An offered release against the installed one: signed by the pinned key (so a rotation is
   * taken only when the old key signed the new manifest), and newer (no downgrade).
   */
  async function checkUpdate(installed, manifestBytes, sigBytes) {
    const m = parseManifest(manifestBytes);
    if (!(await signedBy(installed.release_key, manifestBytes, sigBytes))) {
      throw new Refusal(`the release manifest of ${m.version} is not signed by the pinned release key`);
    }
    if (m.released <= installed.released) {
      throw new Refusal(`${m.version} is not newer than the installed ${installed.version} (a downgrade)`);
    }
    return m;
  }

  /** Throws a Refusal unless `bytes` hash to what the manifest lists for `name`. */
  async function checkFile(m, name, bytes) {
    if (!own(m.files, name)) throw new Refusal(`${name} is not in the release`);
    const want = m.files[name];
    const got = await sha256hex(bytes);
    if (got !== want) throw new Refusal(`${name} does not match the signed release (sha256 ${got.slice(0, 12)}…, signed ${want.slice(0, 12)}…)`);
  }

  function own(object, key) {
    return Object.prototype.hasOwnProperty.call(object, key);
  }

  function typeOf(name) {
    const dot = name.lastIndexOf('.');
    const ext = dot < 0 ? '' : name.slice(dot + 1);
    return own(TYPES, ext) ? TYPES[ext] : undefined;
  }

  /** The headers the worker gives every cached file (a server cannot change them). */
  function appHeaders(name) {
    return {
      'Content-Type': typeOf(name) || 'application/octet-stream',
      'Content-Security-Policy': CSP,
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'Cross-Origin-Opener-Policy': 'same-origin',
    };
  }

  root.PushauthRelease = {
    Refusal, parseManifest, checkFirst, checkUpdate, checkFile, signedBy, sha256hex,
    fingerprint, appHeaders, typeOf, WORKER_FILES, CSP,
  };
})(typeof self !== 'undefined' ? self : globalThis);
