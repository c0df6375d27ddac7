// Byte helpers shared by the signing code and the API client: UTF-8, unpadded base64url (the
// wire form of every binary value, DESIGN.md "The HTTP API"), and length framing.

const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
export function utf8(text) {
  return encoder.encode(text);
}

/** Unpadded base64url of bytes (Uint8Array or ArrayBuffer). */
export function b64url(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = '';
  for (const b of view) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Unpadded standard base64 (the `SHA256:` fingerprint form, as OpenSSH writes it). */
export function b64std(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = '';
  for (const b of view) binary += String.fromCharCode(b);
  return btoa(binary).replace(/=+$/, '');
}

/** Bytes of unpadded (or padded) base64url text; throws on anything else. */
export function fromB64url(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*={0,2}$/.test(text)) {
    throw new Error('not base64url');
  }
  const std = text.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(std + '='.repeat((4 - (std.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** Bytes of hex text. */
export function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Hex text of bytes. */
export function toHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The framing of every signed message: each field as a 4-byte big-endian length, then its
 * bytes. Strings are taken as UTF-8, Uint8Arrays as raw bytes.
 */
export function frame(fields) {
  const parts = fields.map((f) => (typeof f === 'string' ? utf8(f) : new Uint8Array(f)));
  const total = parts.reduce((n, p) => n + 4 + p.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length, false);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/** Constant-length comparison of two byte arrays (no early exit on the first difference). */
export function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}
