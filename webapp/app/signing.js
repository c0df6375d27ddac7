// The device's signing, exactly as DESIGN.md frames it ("What a device signs", "The HTTP API"),
// in WebCrypto only, so the same module runs in the page and in node's tests against
// proto/test-vectors.json. Keys: Ed25519 where the browser has it, else ECDSA P-256 (`es256`:
// public key = the 65-byte uncompressed point, signature = the 64-byte r‖s WebCrypto returns).

import { b64std, b64url, frame, utf8 } from './bytes.js';

const subtle = globalThis.crypto.subtle;

export const REQUEST_DOMAIN = 'pushauth/v1/request';
export const RESPONSE_DOMAIN = 'pushauth/v1/response';
export const ENROLL_DOMAIN = 'pushauth/v1/enroll';
export const CONTEXT_DOMAIN = 'pushauth/v1/context';

const ALGS = {
  ed25519: { gen: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
  es256: {
    gen: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: 'SHA-256' },
  },
};

/** SHA-256 of bytes, as a Uint8Array of 32. */
export async function sha256(bytes) {
  return new Uint8Array(await subtle.digest('SHA-256', bytes));
}

/**
 * A new device key pair whose private half never leaves WebCrypto (non-extractable).
 * `prefer` is 'ed25519' (falls back to es256 where the browser lacks Ed25519) or 'es256'.
 * Resolves to { alg, privateKey, publicKey: raw bytes }.
 */
export async function generateDeviceKey(prefer = 'ed25519') {
  const order = prefer === 'es256' ? ['es256'] : ['ed25519', 'es256'];
  let lastError;
  for (const alg of order) {
    try {
      const pair = await subtle.generateKey(ALGS[alg].gen, false, ['sign', 'verify']);
      const raw = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
      return { alg, privateKey: pair.privateKey, publicKey: raw };
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(`this browser can make neither an Ed25519 nor a P-256 key: ${lastError}`);
}

/** Signs bytes with a device key; the signature as unpadded base64url. */
export async function signB64(alg, privateKey, bytes) {
  const params = ALGS[alg];
  if (!params) throw new Error(`unknown key algorithm ${alg}`);
  return b64url(await subtle.sign(params.sign, privateKey, bytes));
}

/** Verifies an unpadded-base64url signature over bytes with a raw public key. */
export async function verify(alg, publicKeyRaw, bytes, signature) {
  const params = ALGS[alg];
  const key = await subtle.importKey('raw', publicKeyRaw, params.gen, false, ['verify']);
  return subtle.verify(params.sign, key, signature, bytes);
}

/** `"pushauth/v1/enroll" token alg public_key` (the key as raw bytes). */
export function enrollMessage(token, alg, publicKeyRaw) {
  return frame([ENROLL_DOMAIN, token, alg, publicKeyRaw]);
}

/** `"pushauth/v1/request" method path-and-query ts nonce sha256(body)`. */
export async function requestMessage(method, pathAndQuery, ts, nonce, body) {
  return frame([REQUEST_DOMAIN, method, pathAndQuery, ts, nonce, await sha256(body)]);
}

/**
 * `"pushauth/v1/response" challenge_id user device_id rp_nonce context_digest decision code
 * responded_at`; rp_nonce and context_digest as raw bytes.
 */
export function responseMessage(f) {
  return frame([
    RESPONSE_DOMAIN, f.challengeId, f.user, f.deviceId, f.rpNonce, f.contextDigest,
    f.decision, f.code, f.respondedAt,
  ]);
}

/** UTF-8 byte order, the order of Rust's BTreeMap<String, _> keys. */
function byteOrder(a, b) {
  const x = utf8(a);
  const y = utf8(b);
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

/** SHA-256 over `"pushauth/v1/context"` then each key and value in ascending key order. */
export async function contextDigest(context) {
  const fields = [CONTEXT_DOMAIN];
  for (const key of Object.keys(context).sort(byteOrder)) fields.push(key, String(context[key]));
  return sha256(frame(fields));
}

/** A fresh one-time request nonce: 16 random bytes, base64url. */
export function newNonce() {
  return b64url(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

/** The `Authorization: PushAuth …` header for a device request. */
export async function authHeader(account, method, pathAndQuery, body, now = Date.now()) {
  const ts = String(Math.floor(now / 1000));
  const nonce = newNonce();
  const message = await requestMessage(method, pathAndQuery, ts, nonce, body);
  const sig = await signB64(account.alg, account.privateKey, message);
  return `PushAuth device="${account.deviceId}", ts="${ts}", nonce="${nonce}", sig="${sig}"`;
}

/** `SHA256:` + unpadded standard base64 of SHA-256 over the raw public key. */
export async function fingerprint(publicKeyRaw) {
  return `SHA256:${b64std(await sha256(publicKeyRaw))}`;
}

/** RFC 3339 UTC time to the second (`2026-11-23T10:00:00Z`), as the server parses it. */
export function rfc3339(ms = Date.now()) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
