// WebCrypto (Node's, the same API and formats as a browser's) against proto/test-vectors.json:
// every ed25519 and es256 signature verifies and a changed message does not, es256 public keys
// import as raw 65-byte points, high-S signatures verify, fingerprints match. Then it signs with
// a fresh WebCrypto P-256 key and prints the key and signatures as JSON on stdout, for
// proto/tests/webcrypto.rs to verify in Rust. Run by that test: `node proto/tests/webcrypto.mjs`.
import { readFileSync } from "node:fs";
import { webcrypto as crypto } from "node:crypto";
import assert from "node:assert/strict";

const subtle = crypto.subtle;
const here = new URL(".", import.meta.url);
const doc = JSON.parse(readFileSync(new URL("../test-vectors.json", here), "utf8"));

const b64u = (s) => Buffer.from(s, "base64url");
const hex = (s) => Buffer.from(s, "hex");
const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
const SIGN = { name: "ECDSA", hash: "SHA-256" };

async function importPublic(alg, raw) {
  return alg === "es256"
    ? subtle.importKey("raw", raw, ECDSA, true, ["verify"])
    : subtle.importKey("raw", raw, { name: "Ed25519" }, true, ["verify"]);
}

async function verify(alg, key, sig, msg) {
  return alg === "es256"
    ? subtle.verify(SIGN, key, sig, msg)
    : subtle.verify({ name: "Ed25519" }, key, sig, msg);
}

// Each entry's public key: its own, or the "keys" entry with the same secret.
const publicOf = (v) =>
  v.public_key ??
  doc.keys.find((k) => (k.alg ?? "ed25519") === (v.alg ?? "ed25519") &&
    (k.secret_hex ?? k.seed_hex) === (v.secret_hex ?? v.seed_hex)).public_key;

let checked = { ed25519: 0, es256: 0 };
for (const [list, field] of [["response", "signature"], ["request", "signature"], ["enroll", "proof"], ["es256_high_s", "signature"]]) {
  for (const v of doc[list]) {
    const alg = v.alg ?? "ed25519";
    const raw = b64u(publicOf(v));
    const key = await importPublic(alg, raw);
    if (alg === "es256") {
      assert.equal(raw.length, 65);
      assert.equal(raw[0], 4);
      // WebCrypto exports the same 65 bytes back.
      assert.deepEqual(Buffer.from(await subtle.exportKey("raw", key)), raw);
    }
    const msg = hex(v.message_hex);
    const sig = b64u(v[field]);
    assert.equal(sig.length, 64, `${list} ${alg}`);
    assert.ok(await verify(alg, key, sig, msg), `${list} ${alg} verifies`);
    const other = Buffer.from(msg);
    other[other.length - 1] ^= 1;
    assert.ok(!(await verify(alg, key, sig, other)), `${list} ${alg} changed message`);
    checked[alg]++;
  }
}
assert.ok(checked.ed25519 >= 9 && checked.es256 >= 11, JSON.stringify(checked));

for (const v of doc.fingerprint) {
  const digest = Buffer.from(await subtle.digest("SHA-256", b64u(v.public_key)));
  assert.equal("SHA256:" + digest.toString("base64").replace(/=+$/, ""), v.fingerprint);
}

// A browser-made key and signatures over enrollment-like messages, for Rust to verify.
const pair = await subtle.generateKey(ECDSA, false, ["sign", "verify"]);
const publicKey = Buffer.from(await subtle.exportKey("raw", pair.publicKey));
const items = [];
for (let i = 0; i < 32; i++) {
  const message = Buffer.from(`pushauth webcrypto message ${i}`);
  const signature = Buffer.from(await subtle.sign(SIGN, pair.privateKey, message));
  items.push({ message_hex: message.toString("hex"), signature: signature.toString("base64url") });
}
process.stdout.write(JSON.stringify({ checked, public_key: publicKey.toString("base64url"), items }));
