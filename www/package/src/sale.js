// A sale at the edge: the script-tag loader's way to record a sale without the tracker, on a
// thank-you page whose proxy is on the same origin and whose visitor came from a creator (the
// loader decides when: salebeacon.js).
//
// The sale goes to `POST /sales` as the page handed it. The proxy applies the core's rules
// natively, as it does for a beacon: it validates the sale, attributes it from the visitor's
// cookies, commits it to its outbox and answers 202 (sent) or 200 (duplicate: the order id is
// known). So the rules stay in Rust, and this file only carries the sale and reads the answer.
// Any other answer (422, 429, 5xx), a network failure, or a sale that cannot be written as JSON
// goes to the tracker instead (`hand`), whose rules then give the status or the error naming
// each bad field, and which keeps the sale for later while the proxy cannot take it.
//
// Nothing may be lost on the way. The request is `keepalive`, so it goes on if the visitor
// leaves; and if the page is hidden or goes away before the answer, the sale is written to
// localStorage under the key the tracker uses for a sale its rules have not checked yet
// (outbox.js, `r:`), with the mark (mark.js: its key, cookie and database): should the request
// fail, the next page's tracker checks and sends it (and the proxy answers `duplicate` if the
// request did arrive). It is not
// written before the request: localStorage's first call is a synchronous call to the browser
// process, about a millisecond of the page's main thread (measured, SALEBEACON_BENCH_AB).
//
// A file of its own, loaded only by a page with such a sale, so a quiet page does not download it.
import { PREFIX, OUTBOX_KEY, RAW_KEY, SALES_PATH, STATUS_DUPLICATE, WAIT_COOKIE, OUTBOX_MAX_AGE_MS } from './contract.js';

const MARK = PREFIX + OUTBOX_KEY;

/**
 * Records the queued command `c` (`['sale', sale, callback?]`) through the proxy at `endpoint`;
 * resolves `{ status }` (`sent` or `duplicate`) and calls the callback as the tracker would, or
 * returns what `hand(c)` (the tracker taking the command) returns.
 */
export function sell(c, endpoint, hand) {
  const d = document;
  const sale = c[1];
  let body, id, key;
  try {
    if (typeof sale != 'object' || !sale || Array.isArray(sale)) throw 0;
    id = sale.order_id;
    body = JSON.stringify(sale);
  } catch (_) {
    return hand(c);
  }
  // The page is hidden or goes before the answer: the sale waits in storage, with the mark.
  const keep = () => {
    if (key) return;
    key = PREFIX + RAW_KEY + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    try {
      localStorage.setItem(key, `{"sale":${body},"at":${Date.now()}}`);
      localStorage.setItem(MARK, '1');
      indexedDB.open(MARK).onsuccess = (e) => e.target.result.close();
      // The mark's cookie, as cookies.js writes it (written out here to keep this file small).
      d.cookie = `${WAIT_COOKIE}=1; Path=/; Max-Age=${OUTBOX_MAX_AGE_MS / 1000}; SameSite=Lax`;
    } catch (_) {}
  };
  const hidden = () => d.visibilityState == 'hidden' && keep();
  addEventListener('pagehide', keep);
  d.addEventListener('visibilitychange', hidden);
  const answered = () => {
    removeEventListener('pagehide', keep);
    d.removeEventListener('visibilitychange', hidden);
  };
  const p = fetch(endpoint + SALES_PATH, { method: 'POST', body, keepalive: true })
    .then((r) => (r.status == 200 || r.status == 202 ? r.json() : Promise.reject()))
    .then(
      (answer) => {
        answered();
        // The proxy has it: what was kept for later goes.
        if (key) localStorage.removeItem(key);
        const r = { status: answer.status == STATUS_DUPLICATE ? 'duplicate' : 'sent' };
        console.info(`salebeacon: order ${id}: ${r.status}`);
        if (typeof c[2] == 'function') c[2](null, r);
        return r;
      },
      () => {
        // What was kept stays (the page may be going away); the tracker takes the sale too,
        // and the order id keeps the two from becoming two sales.
        answered();
        return hand(c);
      },
    );
  p.catch(() => {});
  return p;
}
