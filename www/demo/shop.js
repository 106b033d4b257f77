// Shared by the storefront pages: the catalogue, the cart badge and the attribution banner.
export const PRODUCT = { sku: 'LANTERN-1', name: 'Trail Lantern', price: 4999, currency: 'usd' };

export function money(minor, currency = 'usd') {
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() })
    .format(minor / 100);
}

/** The order a thank-you page shows: from sessionStorage (`?order=ID`, written by the checkout),
 * or from non-personal query parameters (`?order_id=&total=&currency=`) for direct links. */
export function readOrder() {
  const q = new URLSearchParams(location.search);
  const id = q.get('order');
  if (id) {
    try {
      const o = JSON.parse(sessionStorage.getItem('demo:order:' + id) || 'null');
      if (o) return o;
    } catch (_) {}
  }
  if (q.get('order_id')) {
    return {
      order_id: q.get('order_id'),
      total: Number(q.get('total') || 0),
      currency: (q.get('currency') || 'usd').toLowerCase(),
    };
  }
  return null;
}

/** Shows a tracking outcome on the page (`#result`), and as data attributes for tests. */
export function showResult(status, detail = '') {
  const el = document.getElementById('result');
  if (!el) return;
  el.dataset.status = status;
  el.className = 'result result-' + status;
  const text = {
    sent: 'Sale recorded: the proxy accepted it and will deliver it to Growi.',
    queued: 'Sale stored in this browser; it will be delivered as soon as the proxy answers.',
    duplicate: 'This order was already recorded (refreshing the page does not count twice).',
    unattributed: 'No creator link in this visit: nothing was sent (Growi needs an attribution).',
    blocked: 'Tracking is blocked (consent denied or Global Privacy Control).',
    pixel: 'Pixel requested: the proxy records the sale from its URL and your cookies.',
    error: 'The sale was refused.',
  }[status] || status;
  el.textContent = text + (detail ? ' ' + detail : '');
}

function banner() {
  const el = document.getElementById('attribution');
  if (!el || typeof window.salebeacon !== 'function') return;
  window.salebeacon('ready', (sb) => {
    const a = sb.attribution();
    const who = a && (a.campaign_affiliate_id || `Growi creator ${a.growi_user_id}`);
    el.dataset.tag = (a && a.campaign_affiliate_id) || '';
    el.dataset.visitor = sb.visitorId() || '';
    el.textContent = who
      ? `You came from ${who}: your purchase supports them (until ${a.expires_at.slice(0, 10)}).`
      : 'No creator link in this visit.';
    el.hidden = false;
  });
}

banner();
for (const el of document.querySelectorAll('[data-price]')) el.textContent = money(PRODUCT.price);
