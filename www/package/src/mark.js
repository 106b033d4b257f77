// The mark a quiet page's loader checks to know whether a sale may wait in this browser:
// `salebeacon:outbox`, both a localStorage key and the name of an empty IndexedDB database; and
// the `sb_wait` cookie, which tells a proxy on the page's own origin the same thing from the
// loader's request, so that it serves a loader that needs no check at all (src/contract.rs,
// `WAIT_COOKIE`; proxy/src/http/files.rs).
//
// Why a key and a database: the loader asks IndexedDB for its databases' names
// (`indexedDB.databases()`), an asynchronous call that costs a page about 1 ms less than its first
// localStorage read, which in Chromium is two synchronous calls to the browser process
// (ARCHITECTURE.md has the figures). The
// localStorage key stays where IndexedDB cannot answer (no `databases()`, as in Firefox before
// 126; IndexedDB refused, as in some private modes and sandboxed frames), and for the tracker and
// older loaders.
//
// Why the database only when a sale outlives the page's own attempt: touching IndexedDB costs a
// page about 1 ms of main thread too (measured on the thank-you page, `SALEBEACON_BENCH_AB`), and
// most sales are delivered by the page that recorded them. So the key is written with every
// stored sale (`set`, the page uses localStorage anyway), the database only once a sale stays
// waiting at a settle point (`persist`: the sale queued, a failed attempt, the page hidden or
// going away), and removed only when it may exist (`clear`): this page made it, the key was there
// when this page first looked (an earlier page may have made it), or the loader found it (`found`:
// this also heals a database left behind when one tab delivered another tab's sale). The cookie
// follows the database: written and removed at the same points, so `document.cookie`, a
// synchronous call to the browser process, runs only on a page where a sale outlives its attempt
// or may have done so (it is written synchronously, so it survives a page that is going away,
// where an IndexedDB open may not complete: Firefox). A page closed while its only sale is in
// flight may leave the key without the database and the cookie: its keepalive request still
// goes, and should it fail, the next working page (or an engine that reads the key) sends the
// sale again.
import * as storage from './storage.js';
import { setCookie } from './cookies.js';
import { PREFIX, OUTBOX_KEY, WAIT_COOKIE, OUTBOX_MAX_AGE_MS } from './contract.js';

const NAME = PREFIX + OUTBOX_KEY;
let before; // whether the key was there when this page first looked
let made = false; // this page opened the database
let seen = false; // the loader found the database

/** Whether the key is there now (the first look is remembered as `before`). */
function look() {
  const on = storage.get(OUTBOX_KEY) === '1';
  before ??= on;
  return on;
}

/** The loader started the tracker because it found the database. */
export function found() {
  seen = true;
}

/** A sale is stored: the key. */
export function set() {
  if (!look()) storage.set(OUTBOX_KEY, '1');
}

/** A sale stays waiting beyond this page's attempt: the cookie and the database too (once per page). */
export function persist() {
  set();
  if (made) return;
  made = true;
  try {
    setCookie(WAIT_COOKIE, 1, OUTBOX_MAX_AGE_MS / 1000);
    const r = indexedDB.open(NAME);
    r.onsuccess = () => r.result.close();
  } catch (_) {}
}

/** No sale waits (or consent denied: `all`): the key goes, and the cookie and the database where they may exist. */
export function clear(all) {
  look();
  storage.remove(OUTBOX_KEY);
  if (all || before || made || seen) {
    made = seen = false;
    try {
      setCookie(WAIT_COOKIE, '', 0);
      indexedDB.deleteDatabase(NAME);
    } catch (_) {}
  }
}
