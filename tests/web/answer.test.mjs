// The web app's answer signing (webapp/app/answer.js) in node: it signs exactly the DESIGN.md
// response message over the digest it computed itself, and signs nothing when the server's
// digest is not that of the context it sent, or when the challenge is for another user.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fromB64url, b64url } from '../../webapp/app/bytes.js';
import { DigestMismatch, UserMismatch, signedAnswer } from '../../webapp/app/answer.js';
import { contextDigest, generateDeviceKey, responseMessage, verify } from '../../webapp/app/signing.js';

const context = { service: 'sshd', host: 'web01', rhost: '192.0.2.7' };

async function setup(alg) {
  const key = await generateDeviceKey(alg);
  const account = { deviceId: 'ZGV2aWNl', user: 'alice', alg: key.alg, privateKey: key.privateKey };
  const challenge = {
    id: 'Y2hhbGxlbmdl', user: 'alice', context,
    context_digest: b64url(await contextDigest(context)),
    rp_nonce: b64url(new Uint8Array(32).fill(7)),
  };
  return { key, account, challenge };
}

for (const alg of ['ed25519', 'es256']) {
  test(`issue11: ${alg} answers sign the response message over the device's own digest`, async () => {
    const { key, account, challenge } = await setup(alg);
    const body = await signedAnswer(account, challenge, 'approve', '123456', Date.UTC(2026, 10, 23, 10));
    assert.equal(body.responded_at, '2026-11-23T10:00:00Z');
    const message = responseMessage({
      challengeId: challenge.id, user: 'alice', deviceId: account.deviceId,
      rpNonce: fromB64url(challenge.rp_nonce), contextDigest: await contextDigest(context),
      decision: 'approve', code: '123456', respondedAt: body.responded_at,
    });
    assert.ok(await verify(key.alg, key.publicKey, message, fromB64url(body.signature)));
  });
}

test('issue11: a digest for other details, or a challenge for another user, gets no signature', async () => {
  const { account, challenge } = await setup('ed25519');
  await assert.rejects(signedAnswer(account, { ...challenge, context: { ...context, host: 'other' } }, 'approve', '1'), DigestMismatch);
  await assert.rejects(signedAnswer(account, { ...challenge, context_digest: 'not base64!' }, 'approve', '1'), DigestMismatch);
  await assert.rejects(signedAnswer(account, { ...challenge, user: 'bob' }, 'approve', '1'), UserMismatch);
  await assert.rejects(signedAnswer(account, challenge, 'maybe', ''), /unknown decision/);
});
