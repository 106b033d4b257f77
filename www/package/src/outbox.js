// The browser's persisted outbox and the ledger of delivered orders, one localStorage key per
// order, so that the cost of any one sale is constant however many wait.
//
// - `salebeacon:o:<order_id>`: a sale waiting for the proxy, `{body, created_at, attempts,
//   next_at}`. Written before any request; removed only when the proxy accepted the sale (or
//   refused it for good). `body` is the exact request body, so a resend is byte for byte the
//   first send.
// - `salebeacon:r:<n>`: a sale as the page handed it, before the rules could check it (their
//   module had not arrived yet). It is stored before any network call (the module's download is
//   one), checked as soon as the module is there (then it becomes an `o:` entry, or is dropped
//   with a console error), and meanwhile goes by beacon if the page closes: the proxy applies the
//   same rules. The loader's sale at the edge (sale.js) leaves one too, when its page goes before
//   the proxy answered.
// - `salebeacon:outbox`: set while any sale may be waiting (mark.js: also the name of an empty
//   IndexedDB database, made once a sale outlives the page's attempt). The loader checks this
//   mark to know whether a quiet page has work without loading anything else.
// - `salebeacon:d:<order_id>`: when this browser delivered that order, so a reloaded thank-you
//   page answers `duplicate` without a request. Pruned once per page view, off the critical path:
//   entries past the attribution window go, and the oldest past LEDGER_MAX.
import * as storage from './storage.js';
import * as mark from './mark.js';
import { RAW_KEY } from './contract.js';

export const LEDGER_MAX = 500;
const O = 'o:';
const D = 'd:';
const R = RAW_KEY;

/** The order ids of every waiting sale (one pass over storage, at a page's start). */
export function waiting() {
  return storage.keys(O).map((k) => k.slice(O.length));
}

export function entry(orderId) {
  const e = storage.getJson(O + orderId);
  return e && typeof e === 'object' && e.body && typeof e.created_at === 'number' ? e : undefined;
}

export function put(orderId, e) {
  mark.set();
  storage.set(O + orderId, JSON.stringify(e));
}

export function remove(orderId) {
  storage.remove(O + orderId);
}

/** Stores a sale as the page handed it (a plain copy); returns its key. */
export function putRaw(sale) {
  const key = R + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  mark.set();
  storage.set(key, JSON.stringify({ sale, at: Date.now() }));
  return key;
}

/** The unchecked sales, as `[key, {sale, at}]`. */
export function raw() {
  return storage
    .keys(R)
    .map((k) => [k, storage.getJson(k)])
    .filter(([, v]) => v && typeof v === 'object' && v.sale && typeof v.sale === 'object');
}

export const removeRaw = (key) => storage.remove(key);

/**
 * The mark after a page's attempt (mark.js): made to last while a sale waits that is not `busy`
 * (orders this page is sending right now: their own outcome settles them), removed when none
 * waits at all.
 */
export function settle(busy) {
  const w = waiting();
  if (storage.keys(R).length || w.some((id) => !busy || !busy.has(id))) mark.persist();
  else if (!w.length) mark.clear();
}

export const wasDelivered = (orderId) => storage.get(D + orderId) !== null;

export function delivered(orderId) {
  storage.set(D + orderId, String(Date.now()));
  remove(orderId);
}

/** Drops ledger entries older than `keepMs`, and the oldest past LEDGER_MAX. */
export function prune(keepMs) {
  const now = Date.now();
  const all = storage
    .keys(D)
    .map((k) => [k, Number(storage.get(k)) || 0])
    .sort((a, b) => b[1] - a[1]);
  all.forEach(([k, at], i) => {
    if (i >= LEDGER_MAX || now - at > keepMs) storage.remove(k);
  });
}

/** Everything the tracker stored about sales (consent denied). */
export function clear() {
  for (const k of [...storage.keys(O), ...storage.keys(D), ...storage.keys(R)]) storage.remove(k);
  mark.clear(true);
}
