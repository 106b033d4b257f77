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
    pixel: 'Pixel requested. The page cannot tell whether the proxy took the sale; waiting to see it arrive at Growi…',
    recorded: 'Growi (the sandbox) has this sale: the pixel recorded it.',
    missing: 'Growi has not received this sale. The proxy may have refused it (invalid, or no creator link): the refused list says why (GET /salebeacon/admin/refused).',
    error: 'The sale was refused.',
  }[status] || status;
  el.textContent = text + (detail ? ' ' + detail : '');
}

/** Shows who gets credit for this visit (`#attribution`), from the tracker's answers. */
export function showBanner(a, visitor) {
  const el = document.getElementById('attribution');
  if (!el) return;
  const who = a && (a.campaign_affiliate_id || `Growi creator ${a.growi_user_id}`);
  el.dataset.tag = (a && a.campaign_affiliate_id) || '';
  el.dataset.visitor = visitor || '';
  el.textContent = who
    ? `You came from ${who}: your purchase supports them (until ${a.expires_at.slice(0, 10)}).`
    : 'No creator link in this visit.';
  el.hidden = false;
}

function banner() {
  if (!document.getElementById('attribution') || typeof window.salebeacon !== 'function') return;
  window.salebeacon('ready', (sb) => showBanner(sb.attribution(), sb.visitorId()));
}

/**
 * Where the Growi sandbox of this demo listens: `?sandbox=URL` (remembered for the session), else
 * port 4010 on this host, as `cargo xtask demo` starts it. Only the demo needs this: it reads the
 * sandbox's own control API to show what "Growi" holds.
 */
export function sandboxUrl() {
  const given = new URLSearchParams(location.search).get('sandbox');
  try {
    if (given) sessionStorage.setItem('demo:sandbox', given);
    return given || sessionStorage.getItem('demo:sandbox') || localStorage.getItem('demo:sandbox') ||
      `${location.protocol}//${location.hostname}:4010`;
  } catch (_) {
    return given || `${location.protocol}//${location.hostname}:4010`;
  }
}

/** The sales the sandbox holds (what Growi would show), or null when it cannot be reached. */
export async function sandboxSales() {
  try {
    const r = await fetch(new URL('/_sandbox/sales', sandboxUrl()));
    return r.ok ? await r.json() : null;
  } catch (_) {
    return null;
  }
}

banner();
for (const el of document.querySelectorAll('[data-price]')) el.textContent = money(PRODUCT.price);
