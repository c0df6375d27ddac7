// The accounts this phone holds, in IndexedDB: one per enrolled device (user on this server),
// each with its non-extractable WebCrypto private key (stored as a CryptoKey object, which
// IndexedDB keeps without ever exposing its bytes) and the raw public key.

const DB = 'pushauth';
const ACCOUNTS = 'accounts';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(ACCOUNTS, { keyPath: 'deviceId' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function run(mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(ACCOUNTS, mode);
      const result = work(tx.objectStore(ACCOUNTS));
      tx.oncomplete = () => resolve(result.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Every account, oldest first. */
export async function listAccounts() {
  const all = await run('readonly', (s) => s.getAll());
  return all.sort((a, b) => a.createdAt - b.createdAt);
}

/** Adds or replaces an account. */
export async function putAccount(account) {
  await run('readwrite', (s) => s.put(account));
}

/** Forgets an account and its key. */
export async function deleteAccount(deviceId) {
  await run('readwrite', (s) => s.delete(deviceId));
}
