// Reviewer r2's attacks on the web app's pure parts, in node: what a malicious server (or a
// login that fills the context) could send to make the card read differently from what the
// device signs.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { b64url } from '../../webapp/app/bytes.js';
import { BadContext, signedAnswer } from '../../webapp/app/answer.js';
import { visible } from '../../webapp/app/dom.js';
import { contextDigest, generateDeviceKey } from '../../webapp/app/signing.js';

test('attack11_characters_that_show_as_nothing_are_made_visible', () => {
  // Each would make "prod-db" and "prod<x>-db" look alike, or reorder what is read.
  const hidden = ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u061c', '\u2028', '\u2029',
    '\u3164', '\u115f', '\ufe0f', '\u{e0041}', '\u202e', '\u2066', '\u200f'];
  for (const c of hidden) {
    const shown = visible(`prod${c}-db`);
    assert.ok(!shown.includes(c), `U+${c.codePointAt(0).toString(16)} stays in ${JSON.stringify(shown)}`);
    assert.equal(shown, 'prod\ufffd-db');
  }
  assert.equal(visible('rm -rf /\u001b[2K'), 'rm -rf /\u241b[2K');
  assert.equal(visible('Zoë 東京 ✓'), 'Zoë 東京 ✓');
});

test('attack11_a_context_no_relying_party_can_send_gets_no_signature_even_with_a_matching_digest', async () => {
  const key = await generateDeviceKey('ed25519');
  const account = { deviceId: 'ZGV2aWNl', user: 'alice', alg: key.alg, privateKey: key.privateKey };
  const bad = [
    { service: 'sshd', host: 'dev01', Host: 'prod-db' }, // poses as the "Host" label
    { service: 'sshd', 'time left': '9:59' },
    { service: 'sshd', '': 'x' },
    { service: 'sshd', host: ['prod-db'] },
    { service: 'sshd', host: 'x'.repeat(1025) },
    Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])),
  ];
  for (const context of bad) {
    const challenge = {
      id: 'Y2hhbGxlbmdl', user: 'alice', context,
      context_digest: b64url(await contextDigest(context)),
      rp_nonce: b64url(new Uint8Array(32).fill(7)),
    };
    await assert.rejects(signedAnswer(account, challenge, 'approve', '123456'), BadContext, JSON.stringify(Object.keys(context)));
  }
});

test('attack11_guard_the_device_key_is_non_extractable_for_both_algorithms', async () => {
  // Not a hole found: a guard that the es256 fallback keeps the same promise as Ed25519.
  for (const alg of ['ed25519', 'es256']) {
    const key = await generateDeviceKey(alg);
    assert.equal(key.alg, alg);
    assert.equal(key.privateKey.extractable, false, alg);
    for (const format of ['pkcs8', 'jwk']) {
      await assert.rejects(crypto.subtle.exportKey(format, key.privateKey), `${alg} ${format}`);
    }
  }
});
