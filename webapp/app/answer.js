// The signed answer to a challenge (DESIGN.md "What a device signs"). The device computes the
// context digest itself from the context it shows and refuses to sign when the server's
// digest differs: the signature must cover what the person saw, not what the server claims.

import { fromB64url, sameBytes } from './bytes.js';
import { contextDigest, responseMessage, rfc3339, signB64 } from './signing.js';

/** The server's digest is not the digest of the context it sent: nothing is signed. */
export class DigestMismatch extends Error {
  constructor() {
    super('the details the server sent do not match their fingerprint; nothing was signed');
  }
}

/** The challenge names another user than the account this device holds: nothing is signed. */
export class UserMismatch extends Error {
  constructor() {
    super('the request is for another account than this device\'s; nothing was signed');
  }
}

/**
 * The context is not one a relying party can send (proto/src/context.rs: at most 32 keys of
 * 1 to 64 characters a-z 0-9 _ - ., string values): a key such as "Host" or "Time left"
 * could pose as one of the card's own labels. Nothing is signed.
 */
export class BadContext extends Error {
  constructor(why) {
    super(`the request's details are malformed (${why}); nothing was signed`);
  }
}

const KEY = /^[a-z0-9_.-]{1,64}$/;

/** Throws BadContext unless `context` has the shape proto/src/context.rs enforces. */
export function checkContext(context) {
  if (context === null || typeof context !== 'object' || Array.isArray(context)) throw new BadContext('not an object');
  const keys = Object.keys(context);
  if (keys.length > 32) throw new BadContext(`${keys.length} entries`);
  for (const key of keys) {
    if (!KEY.test(key)) throw new BadContext('a key outside a-z 0-9 _ - .');
    if (typeof context[key] !== 'string') throw new BadContext(`the value of ${key} is not text`);
    if (new TextEncoder().encode(context[key]).length > 1024) throw new BadContext(`the value of ${key} is over 1024 bytes`);
  }
}

const DECISIONS = new Set(['approve', 'deny', 'report']);

/**
 * The body of `POST /v1/device/challenges/{id}/response`: `{decision, code, responded_at,
 * signature}`, signed by `account` over the challenge as received.
 */
export async function signedAnswer(account, challenge, decision, code, now = Date.now()) {
  if (!DECISIONS.has(decision)) throw new Error(`unknown decision ${decision}`);
  // A device answers for its own user only, whatever the server routes to it.
  if (account.user !== undefined && challenge.user !== account.user) throw new UserMismatch();
  checkContext(challenge.context || {});
  const digest = await contextDigest(challenge.context || {});
  let claimed;
  try {
    claimed = fromB64url(challenge.context_digest);
  } catch {
    throw new DigestMismatch();
  }
  if (!sameBytes(digest, claimed)) throw new DigestMismatch();
  const rpNonce = fromB64url(challenge.rp_nonce);
  const respondedAt = rfc3339(now);
  const message = responseMessage({
    challengeId: challenge.id,
    user: challenge.user,
    deviceId: account.deviceId,
    rpNonce,
    contextDigest: digest,
    decision,
    code,
    respondedAt,
  });
  const signature = await signB64(account.alg, account.privateKey, message);
  return { decision, code, responded_at: respondedAt, signature };
}
