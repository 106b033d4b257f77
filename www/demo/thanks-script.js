// Script-tag form: the thank-you page hands the order to the queue stub.
import { readOrder, showResult, money } from './shop.js';

const order = readOrder();
if (!order) {
  showResult('error', 'No order on this page: go through the checkout first.');
} else {
  document.getElementById('summary').textContent =
    `Order ${order.order_id}: ${money(order.total, order.currency)}`;
  window.salebeacon('sale', order, (err, r) => {
    if (err) showResult('error', (err.issues || []).map((i) => `${i.field}: ${i.message}`).join('; '));
    else showResult(r.status);
  });
}
