// The mark a quiet page's loader checks to know whether a sale may wait in this browser:
// `salebeacon:outbox`, both a localStorage key and the name of an empty IndexedDB database.
//
// Why two: the loader asks IndexedDB for its databases' names (`indexedDB.databases()`), an
// asynchronous call that costs a page about 1 ms less than its first localStorage read, which in
// Chromium is two synchronous calls to the browser process (ARCHITECTURE.md has the figures). The
// localStorage key stays where IndexedDB cannot answer (no `databases()`, as in Firefox before
// 126; IndexedDB refused, as in some private modes and sandboxed frames), and for the tracker and
// older loaders. Both are written when a sale is stored, both removed once none waits; the
// database is opened on every write, so a removal by another tab never leaves a sale unmarked.
import * as storage from './storage.js';
import { PREFIX, OUTBOX_KEY } from './contract.js';

export function set() {
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
