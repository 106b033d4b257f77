// Getting the outbox to the proxy: one delivery per order at a time, retries with backoff, and
// the last-chance beacon when the page goes away.
//
// - `deliver` sends one order under its cross-tab lock and settles it from the proxy's answer:
//   accepted (202) or duplicate (200) leave the outbox for the ledger; a final refusal leaves it
//   with a console error; anything else stays, with its next attempt time. What counts as final
//   and how long to wait are the core's retry policy (`nextAttempt`, in the `order` module, which
//   is loaded only when an answer is not a success).
// - `flush` sends what is due, at most ROUND sales a round, later rounds spread out, so a
//   browser with a thousand waiting sales (a proxy down for an hour) never freezes a page; a timer
//   wakes it when the earliest backoff ends, and the page's `online` event wakes it at once.
// - On `pagehide` / `visibilitychange: hidden`, every unconfirmed sale also goes with
//   `navigator.sendBeacon`, within the browser's 64 KB budget for such requests. The outbox keeps
//   it anyway, because a beacon is never confirmed; the next page view resends, and the proxy
//   answers `duplicate` for what already arrived.
import * as outbox from './outbox.js';
import { withLock } from './lock.js';
import { need } from './rules.js';
import { fail } from './errors.js';
import { SALES_PATH, OUTBOX_MAX_AGE_MS, STATUS_DUPLICATE } from './contract.js';

const ROUND = 20;
const BEACON_BUDGET = 60 * 1024;
/** When the retry policy cannot be consulted (its module did not load: offline), try again in. */
const FALLBACK_WAIT = 30000;

let target = null; // { endpoint, keepMs, prepare }
const inFlight = new Set(); // orders this page is delivering
const sending = new Set(); // orders whose request has left (the beacon skips them)
const nextAt = new Map(); // order → next attempt, as far as this page knows
let timer = 0;
let listening = false;

export function start(t) {
  target = t;
  if (listening) return;
  listening = true;
  addEventListener('online', () => flush(true));
  addEventListener('pagehide', beaconAll);
  document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && beaconAll());
}

export function stop() {
  target = null;
  clearTimeout(timer);
}

/**
 * Sends one waiting order and settles it: 'sent' or 'duplicate' when the proxy has it; undefined
 * when it stays in the outbox (to be retried) or another delivery of it is under way; throws a
 * SaleBeaconError when the proxy refused it for good.
 */
export async function deliver(orderId, keepalive) {
  if (!target || inFlight.has(orderId)) return undefined;
  inFlight.add(orderId);
  try {
    return await withLock(orderId, async () => {
      // Another tab may have settled it while this one waited for the lock.
      if (outbox.wasDelivered(orderId)) {
        outbox.remove(orderId);
        return 'duplicate';
      }
      const e = outbox.entry(orderId);
      return e && settle(orderId, e, keepalive);
    });
  } finally {
    inFlight.delete(orderId);
  }
}

async function settle(orderId, e, keepalive) {
  const t = target;
  let status = 0;
  let answer = {};
  let retryAfter = '';
  sending.add(orderId);
  try {
    // text/plain: a "simple" request (no CORS preflight), the same form sendBeacon sends.
    const r = await fetch(t.endpoint + SALES_PATH, {
      method: 'POST',
      body: JSON.stringify(e.body),
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
      credentials: 'include',
      keepalive,
    });
    status = r.status;
    retryAfter = r.headers.get('retry-after') || '';
    answer = await r.json().catch(() => ({}));
  } catch (_) {
    // No answer: the network, or the proxy is down.
  } finally {
    sending.delete(orderId);
  }
  if (status === 200 || status === 202) {
    outbox.delivered(orderId);
    nextAt.delete(orderId);
    return answer && answer.status === STATUS_DUPLICATE ? 'duplicate' : 'sent';
  }
  let wait;
  try {
    wait = (await need('order')).nextAttempt(status, e.attempts, Math.random(), retryAfter);
  } catch (_) {
    wait = FALLBACK_WAIT;
  }
  if (wait < 0) {
    outbox.remove(orderId);
    nextAt.delete(orderId);
    const issues = status === 422 && Array.isArray(answer.issues) && answer.issues.length ? answer.issues : null;
    const message = answer.error || answer.message || '';
    console.error(
      `salebeacon: the proxy refused order ${orderId}` +
        (issues ? `: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}` : ` (${status}): ${message}`),
    );
    throw issues
      ? fail('invalid_sale', 'invalid sale', issues)
      : fail('rejected', 'sale rejected', [{ field: 'sale', message: `the proxy refused the sale (${status}): ${message}` }]);
  }
  e.attempts += 1;
  e.next_at = Date.now() + wait;
  outbox.put(orderId, e);
  nextAt.set(orderId, e.next_at);
  schedule();
  return undefined;
}

/**
 * Sends waiting sales, oldest first: all of them on a new page view (`force`), else those whose
 * backoff has passed; at most ROUND a round. Drops sales past the outbox's maximum age.
 */
export async function flush(force) {
  if (!target) return;
  // Sales stored before their rules arrived are checked first (tracker.js).
  try {
    await target.prepare();
  } catch (_) {
    // Their module did not load: they wait for a later flush.
  }
  const now = Date.now();
  const due = [];
  for (const id of outbox.waiting()) {
    const e = outbox.entry(id);
    if (!e) {
      outbox.remove(id);
    } else if (now - e.created_at > OUTBOX_MAX_AGE_MS) {
      outbox.remove(id);
      console.error(`salebeacon: gave up on order ${id} after ${OUTBOX_MAX_AGE_MS / 86400000} days without reaching the proxy`);
    } else {
      nextAt.set(id, e.next_at);
      if (force || e.next_at <= now) due.push([e.created_at, id]);
    }
  }
  due.sort((a, b) => a[0] - b[0]);
  for (const [, id] of due.slice(0, ROUND)) {
    try {
      await deliver(id, false);
    } catch (_) {
      // A final refusal was reported on the console.
    }
  }
  if (due.length > ROUND) {
    // The rest goes in later rounds, so no page does all of it at once.
    clearTimeout(timer);
    timer = setTimeout(() => flush(force), 1000);
    return;
  }
  outbox.settle(inFlight);
  schedule();
}

/** Arms one timer for the earliest retry this page knows of. */
function schedule() {
  clearTimeout(timer);
  if (!target || !nextAt.size) return;
  const next = Math.min(...nextAt.values());
  timer = setTimeout(() => flush(false), Math.max(0, Math.min(next - Date.now(), 2 ** 31 - 1)));
}

/** Every unconfirmed sale by sendBeacon, within the budget (the page is going away). */
function beaconAll() {
  if (!target) return;
  // What still waits (in flight included) keeps its mark past this page (mark.js).
  outbox.settle();
  if (!navigator.sendBeacon) return;
  // A sale whose request has left goes on without the page; one that only waits for its lock has
  // not left yet and must go by beacon. An unchecked sale goes as the page handed it: the proxy
  // applies the same rules, with the attribution from the cookies.
  const bodies = outbox
    .waiting()
    .filter((id) => !sending.has(id))
    .map((id) => outbox.entry(id))
    .filter(Boolean)
    .map((e) => e.body)
    .concat(outbox.raw().map(([, r]) => r.sale));
  let spent = 0;
  for (const b of bodies) {
    const body = JSON.stringify(b);
    spent += body.length;
    if (spent > BEACON_BUDGET) break;
    navigator.sendBeacon(target.endpoint + SALES_PATH, body);
  }
}
