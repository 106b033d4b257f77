// The mark a quiet page's loader checks to know whether a sale may wait in this browser:
// `salebeacon:outbox`, both a localStorage key and the name of an empty IndexedDB database.
//
// Why two: the loader asks IndexedDB for its databases' names (`indexedDB.databases()`), an
// asynchronous call that costs a page about 1 ms less than its first localStorage read, which in
// Chromium is two synchronous calls to the browser process (ARCHITECTURE.md has the figures). The
// localStorage key stays where IndexedDB cannot answer (no `databases()`, as in Firefox before
// 126; IndexedDB refused, as in some private modes and sandboxed frames), and for the tracker and
// older loaders. Both are written when a sale is stored, both removed once none waits (the
// tracker settles the outbox after every delivery, so the page after a purchase stays quiet).
// A write finds the key already there when nothing removed it since the last write, and then
// leaves both as they are: removal takes the key first and the database after, and IndexedDB
// runs an origin's opens and deletions in order, so the key present means the database follows.
// A thank-you page writes twice (the sale as handed over, then as checked): one database opened.
import * as storage from './storage.js';
import { PREFIX, OUTBOX_KEY } from './contract.js';

export function set() {
  if (storage.get(OUTBOX_KEY) === '1') return;
  storage.set(OUTBOX_KEY, '1');
  try {
    const r = indexedDB.open(PREFIX + OUTBOX_KEY);
    r.onsuccess = () => r.result.close();
  } catch (_) {}
}

export function clear() {
  storage.remove(OUTBOX_KEY);
  try {
    indexedDB.deleteDatabase(PREFIX + OUTBOX_KEY);
  } catch (_) {}
}
