// Zero-code capture of the GA4 `purchase` events a shop already sends (`capture: ['ga4']`, or
// `data-capture="ga4"` on the loader tag): each becomes a sale, recorded with trackSale.
//
// Both ways a shop sends them reach `window.dataLayer`: Google Tag Manager's
// `dataLayer.push({ event: 'purchase', ecommerce: { transaction_id, value, currency, ... } })`, and
// gtag.js's `gtag('event', 'purchase', { ... })`, which pushes its `arguments`. So this reads the
// entries already there (pushed before the tracker arrived) and wraps `dataLayer.push` for the later
// ones, keeping whatever push was there (GTM's own wrapper calls the one it found, and so does
// this one). Each entry is read once per page; a reload of the thank-you page pushes the event
// again and the outbox's ledger answers `duplicate`, so an order is one sale.
//
// Only names are mapped here: `transaction_id` is the order id, `value` the total, `currency` the
// currency. What the amounts are worth in minor units is the `order` module's `minorUnits`, and
// whether the result is a valid sale is trackSale's call, as for any sale. `tax` and `shipping`
// are not sent: Growi's sale has no such fields, and `value` is the revenue GA4 reports. An event
// that cannot make a valid sale is reported on the console with every issue, under the event's own
// field names; nothing is thrown into the shop's page.
//
// A file of its own, imported only by pages that ask for GA4 capture: no other page downloads it.

const N = 'salebeacon';

/** The purchase parameters of a dataLayer entry (GTM or gtag shape), with where they sit. */
function purchase(e) {
  if (!e || typeof e !== 'object') return null;
  if (e.event === 'purchase' && e.ecommerce && typeof e.ecommerce === 'object') return { p: e.ecommerce, at: 'ecommerce.' };
  // gtag('event', 'purchase', params): an Arguments object (array-like).
  if (e[0] === 'event' && e[1] === 'purchase') return { p: e[2] && typeof e[2] === 'object' ? e[2] : {}, at: '' };
  return null;
}

const NAMES = { order_id: 'transaction_id', total: 'value' };

/**
 * Starts watching `window.dataLayer`: `trackSale` records a sale, `need('visit')` resolves the
 * `visit` rules module (its `minorUnits` converts the amounts).
 */
export function watch(trackSale, need) {
  const w = window;
  const c = console;
  let dl = w.dataLayer;
  if (dl == null) dl = w.dataLayer = [];
  if (!Array.isArray(dl)) return c.error(`${N}: GA4 capture: window.dataLayer is not an array; no purchase can be read`);
  if (dl._sbWatched) return; // a second init() on the page
  dl._sbWatched = true;
  const seen = new WeakSet();

  async function record({ p, at }) {
    const rename = (i) => ({ field: at + (NAMES[i.field] || i.field), message: i.message });
    let sale;
    const issues = [];
    try {
      const id = p.transaction_id;
      sale = { order_id: typeof id === 'number' ? String(id) : id, currency: p.currency };
      if (p.value == null) issues.push({ field: 'value', message: 'is required (the purchase total)' });
      else if (p.currency != null) {
        const r = JSON.parse((await need('visit')).minorUnits(String(p.value), String(p.currency)));
        if (r.issues) issues.push(...r.issues.map((i) => ({ field: i.field === 'amount' ? 'value' : i.field, message: i.message })));
        else sale.total = r.value;
      }
    } catch (e) {
      issues.push({ field: 'event', message: `could not be read (${(e && e.message) || e})` });
    }
    const label = `${N}: GA4 purchase ${typeof (sale && sale.order_id) === 'string' ? sale.order_id : ''}`.trimEnd();
    let r;
    try {
      r = await trackSale(sale || {});
    } catch (e) {
      // Every issue, the amount's and the sale's (without the sale's own "total is required"
      // when the value was the problem).
      const more = ((e && e.issues) || [{ field: 'event', message: String((e && e.message) || e) }]).filter(
        (i) => !(i.field === 'total' && p.value != null) && !issues.some((j) => j.field === i.field),
      );
      return c.error(`${label}: cannot make a sale`, issues.concat(more).map(rename));
    }
    if (issues.length) return c.error(`${label}: cannot make a sale`, issues.map(rename));
    c.info(`${label}: ${r.status}`);
  }

  function take(e) {
    let found;
    try {
      found = purchase(e);
    } catch (_) {
      return; // an entry whose getters throw is no purchase of ours
    }
    if (!found || seen.has(e)) return;
    seen.add(e);
    record(found).catch((x) => c.error(x));
  }

  for (const e of dl.slice()) take(e);
  const push = dl.push;
  dl.push = function () {
    const r = push.apply(this, arguments);
    for (let i = 0; i < arguments.length; i++) take(arguments[i]);
    return r;
  };
}
