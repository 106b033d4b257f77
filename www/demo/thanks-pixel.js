// Pixel form: only non-personal order fields go into the URL; the proxy takes the attribution
// and the visitor id from the first-party cookies.
import { readOrder, showResult, money } from './shop.js';

const order = readOrder();
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
  img.onload = () => showResult('pixel');
  img.onerror = () => showResult('error', 'The pixel did not load.');
  img.src = '/salebeacon/pixel.gif?' + q;
  document.body.appendChild(img);
}
