// One delivery of an order at a time across this browser's tabs.
//
// With Web Locks (`navigator.locks`, secure contexts) an order's delivery holds the lock
// `salebeacon:o:<order_id>`; a second tab waits for it and then finds the order delivered. Where
// Web Locks are missing (plain http pages, older engines), a lease in localStorage stands in: a
// tab takes `salebeacon:lock:<order_id>` for a few seconds unless a live lease of another tab is
// there, and re-reads it to make sure it won. Either way the proxy's dedupe by order id stays the
// last line: two deliveries of one order still make one sale.
import * as storage from './storage.js';

const LEASE_MS = 8000;
const tab = Math.random().toString(36).slice(2);

export async function withLock(orderId, fn) {
  const name = `salebeacon:o:${orderId}`;
  if (navigator.locks && navigator.locks.request) return navigator.locks.request(name, () => fn());
  const key = `lock:${orderId}`;
  for (let tries = 0; ; tries++) {
    const [owner, until] = (storage.get(key) || '').split(' ');
    if (!owner || owner === tab || Number(until) < Date.now()) {
      storage.set(key, `${tab} ${Date.now() + LEASE_MS}`);
      if ((storage.get(key) || '').startsWith(tab)) break;
    }
    if (tries > 100) return undefined;
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 50));
  }
  try {
    return await fn();
  } finally {
    storage.remove(key);
  }
}
