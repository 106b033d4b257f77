// Pixel form: only non-personal order fields go into the URL; the proxy takes the attribution
// and the visitor id from the first-party cookies.
//
// An <img> cannot tell the page whether the proxy took the sale (a pixel always answers a GIF),
// so this page says so, and then watches the demo's Growi sandbox: green once the sale arrives
// there, amber if it does not (the proxy keeps refused pixels in its refused list).
import { readOrder, showResult, money, sandboxSales } from './shop.js';

const order = readOrder();
const params = new URLSearchParams(location.search);
const waitMs = Number(params.get('wait') || 30) * 1000;

async function watch(orderId) {
  const until = Date.now() + waitMs;
  while (Date.now() < until) {
    const sales = await sandboxSales();
    if (sales === null) return; // no sandbox to ask: say nothing more than the pixel can know
    if (sales.some((s) => s.external_id === orderId)) return showResult('recorded');
    await new Promise((r) => setTimeout(r, 1000));
  }
  showResult('missing');
}

if (!order) {
  showResult('error', 'No order on this page: go through the checkout first.');
} else {
  document.getElementById('summary').textContent =
    `Order ${order.order_id}: ${money(order.total, order.currency)}`;
  const q = new URLSearchParams({
    order_id: order.order_id,
    total: String(order.total),
    currency: order.currency,
  });
  const img = new Image(1, 1);
  img.alt = '';
  img.id = 'pixel';
  img.onload = () => {
    showResult('pixel');
    watch(order.order_id);
  };
  img.onerror = () => showResult('error', 'The pixel did not load.');
  img.src = '/salebeacon/pixel.gif?' + q;
  document.body.appendChild(img);
}
