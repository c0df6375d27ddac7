// The server's API from the page: same origin only (the CSP allows no other), never cached,
// no cookies. Device requests are signed (signing.js); failures become ApiError (the server
// answered) or OfflineError (it did not).

import { utf8 } from './bytes.js';
import { authHeader } from './signing.js';

/** The server answered with an error body `{"error","message"}`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

/** The server could not be reached. */
export class OfflineError extends Error {}

async function send(method, path, body, headers, signal) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body && body.length ? body : undefined,
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
      signal,
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new OfflineError('the server cannot be reached');
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, json && json.error, json && json.message);
  }
  return json;
}

/** An unsigned request (enrollment lookup and redemption, the VAPID key). */
export function publicRequest(method, path, value) {
  const body = value === undefined ? null : utf8(JSON.stringify(value));
  const headers = body ? { 'Content-Type': 'application/json' } : {};
  return send(method, path, body, headers);
}

/** A request signed by `account`'s device key over method, path and query, and body. */
export async function deviceRequest(account, method, path, value, signal) {
  const body = value === undefined ? new Uint8Array(0) : utf8(JSON.stringify(value));
  const headers = { Authorization: await authHeader(account, method, path, body) };
  if (body.length) headers['Content-Type'] = 'application/json';
  return send(method, path, body, headers, signal);
}
