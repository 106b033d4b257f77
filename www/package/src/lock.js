// One delivery of an order at a time across this browser's tabs.
//
// With Web Locks (`navigator.locks`, secure contexts) an order's delivery holds the lock
// `salebeacon:o:<order_id>`; a second tab waits for it and then finds the order delivered. Where
// Web Locks are missing (plain http pages, older engines), a lease in localStorage stands in:
// `salebeacon:lock:<order_id>` holds `<token> <expiry>`. A tab that finds no live lease writes its
// claim, waits SETTLE_MS and reads the key again; only the tab that still finds its own claim goes
// on. Tabs run in separate processes and see each other's localStorage writes a few milliseconds
// late, but all in one order: claims written at the same moment all end up as the one written
// last, so exactly one tab reads back its own. (Reading back at once proves nothing: a tab always
// sees its own write, and two tabs sent the same order 1-15 ms apart.)
//
// The next holder must also see what the last one stored (the order delivered). A Web Lock is
// released through its own channel, which can overtake localStorage's (Firefox: a second tab got
// the lock and still read the order as waiting), so the lock is held SETTLE_MS longer, while the
// caller already has its answer. A lease's removal travels with the writes before it.
// Either way the proxy's dedupe by order id stays the last line: two deliveries of one order
// still make one sale.
import * as storage from './storage.js';

const LEASE_MS = 8000;
/** Well above the time a localStorage write takes to reach another tab (1-20 ms seen). */
const SETTLE_MS = 100;
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

export async function withLock(orderId, fn) {
  const locks = navigator.locks;
  if (locks && locks.request) {
    return new Promise((resolve, reject) => {
      locks
        .request(`salebeacon:o:${orderId}`, () => {
          const p = fn();
          p.then(resolve, reject);
          return p.catch(() => {}).then(() => wait(SETTLE_MS));
        })
        .catch(reject);
    });
  }
  const key = `lock:${orderId}`;
  const token = Math.random().toString(36).slice(2);
  let claim;
  for (let tries = 0; ; tries++) {
    if (!((storage.get(key) || '').split(' ')[1] > Date.now())) {
      storage.set(key, (claim = `${token} ${Date.now() + LEASE_MS}`));
      await wait(SETTLE_MS);
      if (storage.get(key) === claim) break;
    }
    if (tries > 100) return undefined;
    await wait(50 + Math.random() * 50);
  }
  try {
    return await fn();
  } finally {
    if (storage.get(key) === claim) storage.remove(key);
  }
}
