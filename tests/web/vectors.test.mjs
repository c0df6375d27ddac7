// The web app's signing module against proto/test-vectors.json (the contract every
// implementation reads): ed25519 messages and signatures are reproduced byte for byte from the
// seed; es256 ones (randomised signatures) are checked by verification. Runs in node 20, whose
// WebCrypto is the same API the browser has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

import { b64url, fromB64url, fromHex, toHex } from '../../webapp/app/bytes.js';
import {
  contextDigest, enrollMessage, fingerprint, requestMessage, responseMessage, signB64, verify,
} from '../../webapp/app/signing.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const V = JSON.parse(readFileSync(join(ROOT, 'proto', 'test-vectors.json'), 'utf8'));

/** The Ed25519 private key of a vector's seed (non-extractable, as the app keeps its own). */
async function ed25519Key(seedHex, publicKey) {
  const jwk = { kty: 'OKP', crv: 'Ed25519', d: b64url(fromHex(seedHex)), x: publicKey };
  return crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['sign']);
}

function publicOf(seedHex) {
  const key = V.keys.find((k) => k.seed_hex === seedHex && (k.alg ?? 'ed25519') === 'ed25519');
  assert.ok(key, `a key for seed ${seedHex}`);
  return key.public_key;
}

/** Checks a signature: equal bytes for ed25519 (deterministic), verification for es256. */
async function checkSignature(v, message, expected) {
  const alg = v.alg ?? 'ed25519';
  if (alg === 'ed25519') {
    const pub = v.public_key ?? publicOf(v.seed_hex);
    const key = await ed25519Key(v.seed_hex, pub);
    assert.equal(await signB64('ed25519', key, message), expected);
    assert.ok(await verify('ed25519', fromB64url(pub), message, fromB64url(expected)));
  } else {
    assert.equal(alg, 'es256');
    const pub = v.public_key ?? V.keys.find((k) => k.alg === 'es256' && k.secret_hex === v.secret_hex)?.public_key;
    assert.ok(pub, 'an es256 vector names its public key');
    assert.equal(fromB64url(pub).length, 65);
    assert.equal(fromB64url(expected).length, 64);
    assert.ok(await verify('es256', fromB64url(pub), message, fromB64url(expected)), 'es256 verifies');
    const flipped = fromB64url(expected);
    flipped[10] ^= 1;
    assert.equal(await verify('es256', fromB64url(pub), message, flipped), false);
  }
}

test('context digests', async () => {
  assert.ok(V.context_digest.length > 0);
  for (const v of V.context_digest) {
    assert.equal(b64url(await contextDigest(v.context)), v.digest, JSON.stringify(v.context));
  }
});

test('enrollment proofs', async () => {
  assert.ok(V.enroll.length > 0);
  for (const v of V.enroll) {
    const message = enrollMessage(v.token, v.alg, fromB64url(v.public_key));
    assert.equal(toHex(message), v.message_hex);
    await checkSignature(v, message, v.proof);
  }
});

test('device requests', async () => {
  assert.ok(V.request.length > 0);
  for (const v of V.request) {
    const body = new TextEncoder().encode(v.body);
    const message = await requestMessage(v.method, v.path_and_query, v.ts, v.nonce, body);
    assert.equal(toHex(message), v.message_hex);
    await checkSignature(v, message, v.signature);
    assert.ok(v.header.includes(`sig="${v.signature}"`) && v.header.startsWith(`PushAuth device="${v.device}"`));
  }
});

test('device answers', async () => {
  assert.ok(V.response.length > 0);
  for (const v of V.response) {
    const digest = await contextDigest(v.context);
    assert.equal(b64url(digest), v.context_digest);
    const message = responseMessage({
      challengeId: v.challenge_id, user: v.user, deviceId: v.device_id,
      rpNonce: fromB64url(v.rp_nonce), contextDigest: digest, decision: v.decision,
      code: v.code, respondedAt: v.responded_at,
    });
    assert.equal(toHex(message), v.message_hex);
    await checkSignature(v, message, v.signature);
  }
});

test('key fingerprints', async () => {
  const prints = [...(V.fingerprint || []), ...V.keys.filter((k) => k.fingerprint)];
  assert.ok(prints.length > 0, 'proto/test-vectors.json has fingerprint vectors');
  for (const k of prints) {
    assert.equal(await fingerprint(fromB64url(k.public_key)), k.fingerprint, k.public_key);
  }
});

test('es256 signatures with a high s are judged as the server judges them', async () => {
  for (const v of V.es256_high_s || []) {
    const ok = await verify('es256', fromB64url(v.public_key), fromHex(v.message_hex), fromB64url(v.signature));
    assert.equal(ok, v.valid, v.signature);
  }
});
