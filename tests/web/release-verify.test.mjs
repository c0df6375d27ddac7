// Node-side checks of webapp/app/release-verify.js, the code the service worker runs to decide
// whether an offered release may replace the installed one. Keys and signatures are made here
// with node's own crypto (an independent ECDSA P-256 implementation from WebCrypto's verifier).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const SOURCE = fileURLToPath(new URL('../../webapp/app/release-verify.js', import.meta.url));
vm.runInThisContext(readFileSync(SOURCE, 'utf8'), { filename: SOURCE });
const R = globalThis.PushauthRelease;

const enc = new TextEncoder();
const sha = (text) => createHash('sha256').update(text).digest('hex');

function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const raw = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  return { privateKey, raw: raw.toString('base64url') };
}

const signWith = (key, bytes) => sign('sha256', bytes, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });

function manifest(key, over = {}) {
  const m = {
    format: 1, version: '1.0.0', released: 1000, development: false, release_key: key.raw,
    files: { 'index.html': sha('<p>1</p>'), 'sw.js': sha('sw'), 'app.js': sha('app') },
    ...over,
  };
  return enc.encode(JSON.stringify(m));
}

async function refusal(promise, pattern) {
  await assert.rejects(promise, (e) => e instanceof R.Refusal && pattern.test(e.message));
}

test('issue11_first_install_takes_a_consistent_release_and_refuses_a_forged_one', async () => {
  const k = keyPair();
  const bytes = manifest(k);
  const m = await R.checkFirst(bytes, signWith(k, bytes));
  assert.equal(m.version, '1.0.0');
  const other = keyPair();
  await refusal(R.checkFirst(bytes, signWith(other, bytes)), /does not verify/);
  const changed = manifest(k, { version: '1.0.1' });
  await refusal(R.checkFirst(changed, signWith(k, bytes)), /does not verify/);
  await refusal(R.checkFirst(bytes, new Uint8Array(63)), /malformed/);
});

test('issue11_an_update_must_be_signed_by_the_pinned_key_and_newer', async () => {
  const k = keyPair();
  const installed = await R.checkFirst(manifest(k), signWith(k, manifest(k)));
  const next = manifest(k, { version: '1.1.0', released: 2000 });
  const m = await R.checkUpdate(installed, next, signWith(k, next));
  assert.equal(m.version, '1.1.0');
  // A server that made its own key and signed its own release: refused.
  const evil = keyPair();
  const forged = manifest(evil, { version: '6.6.6', released: 9999 });
  await refusal(R.checkUpdate(installed, forged, signWith(evil, forged)), /not signed by the pinned release key/);
  // The genuine key's older (or same-time) release: a downgrade.
  const old = manifest(k, { version: '0.9.0', released: 999 });
  await refusal(R.checkUpdate(installed, old, signWith(k, old)), /downgrade/);
  const same = manifest(k, { version: '1.0.0-b', released: 1000 });
  await refusal(R.checkUpdate(installed, same, signWith(k, same)), /downgrade/);
});

test('issue11_a_key_rotation_is_taken_only_when_the_pinned_key_signed_it', async () => {
  const oldKey = keyPair();
  const newKey = keyPair();
  const installed = await R.checkFirst(manifest(oldKey), signWith(oldKey, manifest(oldKey)));
  const rotated = manifest(newKey, { version: '2.0.0', released: 3000 });
  // New key first (what a fresh install checks), old key second (what installed apps check).
  const both = Buffer.concat([signWith(newKey, rotated), signWith(oldKey, rotated)]);
  const m = await R.checkUpdate(installed, rotated, both);
  assert.equal(m.release_key, newKey.raw);
  assert.equal((await R.checkFirst(rotated, both)).version, '2.0.0');
  // Signed by the new key alone: the installed app cannot tell it from a forgery.
  await refusal(R.checkUpdate(installed, rotated, signWith(newKey, rotated)), /pinned/);
});

test('issue11_malformed_manifests_and_paths_are_refused', async () => {
  const k = keyPair();
  const cases = [
    [{ format: 2 }, /format/],
    [{ version: '' }, /version/],
    [{ released: -1 }, /release time/],
    [{ development: 'no' }, /development/],
    [{ release_key: 'AAAA' }, /P-256/],
    [{ files: {} }, /no files/],
    [{ files: { 'index.html': sha('x'), 'sw.js': sha('y'), '../etc/passwd.js': sha('z') } }, /bad file name/],
    [{ files: { 'index.html': sha('x'), 'sw.js': sha('y'), '.hidden.js': sha('z') } }, /bad file name/],
    [{ files: { 'index.html': sha('x'), 'sw.js': sha('y'), 'release.json': sha('z') } }, /bad file name/],
    [{ files: { 'index.html': sha('x'), 'sw.js': 'ABC' } }, /bad hash/],
    [{ files: { 'index.html': sha('x'), 'sw.js': sha('y'), 'run.exe': sha('z') } }, /not allowed/],
    [{ files: { 'app.js': sha('x') } }, /index.html or sw.js/],
    // Names that are properties of every object are still unknown types.
    [{ files: { 'index.html': sha('x'), 'sw.js': sha('y'), 'a.constructor': sha('z') } }, /not allowed/],
    [{ files: { 'index.html': sha('x'), 'sw.js': sha('y'), 'a.__proto__': sha('z') } }, /not allowed/],
  ];
  for (const [over, pattern] of cases) {
    const bytes = manifest(k, over);
    await refusal(R.checkFirst(bytes, signWith(k, bytes)), pattern);
  }
  await refusal(R.checkFirst(enc.encode('not json'), new Uint8Array(64)), /not JSON/);
});

test('issue11_a_file_must_hash_to_its_signed_value', async () => {
  const k = keyPair();
  const m = await R.checkFirst(manifest(k), signWith(k, manifest(k)));
  await R.checkFile(m, 'app.js', enc.encode('app'));
  await refusal(R.checkFile(m, 'app.js', enc.encode('app;evil()')), /app\.js does not match the signed release/);
  await refusal(R.checkFile(m, 'other.js', enc.encode('app')), /not in the release/);
  await refusal(R.checkFile(m, 'constructor', enc.encode('app')), /not in the release/);
});

test('issue11_fingerprint_is_sha256_of_the_raw_key', async () => {
  const k = keyPair();
  const want = 'SHA256:' + createHash('sha256').update(Buffer.from(k.raw, 'base64url')).digest('base64').replace(/=+$/, '');
  assert.equal(await R.fingerprint(k.raw), want);
});

test('issue11_the_built_release_verifies', async () => {
  // The release the build embedded (target/.../out/release.json), when a build is present.
  const target = process.env.CARGO_TARGET_DIR || fileURLToPath(new URL('../../target', import.meta.url));
  const { readdirSync, statSync } = await import('node:fs');
  const dir = `${target}/debug/build`;
  let newest = null;
  for (const d of readdirSync(dir).filter((d) => d.startsWith('pushauth-webapp-'))) {
    const f = `${dir}/${d}/out/release.json`;
    try {
      const t = statSync(f).mtimeMs;
      if (!newest || t > newest.t) newest = { t, f };
    } catch { /* the build script's own directory */ }
  }
  assert.ok(newest, 'no built release.json: cargo build -p pushauth-webapp');
  const bytes = readFileSync(newest.f);
  const sig = readFileSync(newest.f.replace(/json$/, 'sig'));
  const m = await R.checkFirst(bytes, sig);
  for (const [name, hash] of Object.entries(m.files)) {
    const file = fileURLToPath(new URL(`../../webapp/app/${name}`, import.meta.url));
    assert.equal(sha(readFileSync(file)), hash, name);
  }
});
