// npm form: the thank-you page of a shop built with a bundler.
import { init, trackSale, visitorId, attribution, isSaleBeaconError } from 'salebeacon';
import { readOrder, showResult, money, showBanner } from '../../demo/shop.js';

const order = readOrder();
const result = document.getElementById('result');

try {
  await init({ endpoint: '/salebeacon' });
  result.dataset.visitor = visitorId() ?? '';
  result.dataset.tag = attribution()?.campaign_affiliate_id ?? '';
  showBanner(attribution(), visitorId());
  if (!order) {
    showResult('error', 'No order on this page: go through the checkout first.');
  } else {
    document.getElementById('summary').textContent =
      `Order ${order.order_id}: ${money(order.total, order.currency)}`;
    const { status } = await trackSale(order);
    showResult(status);
  }
} catch (e) {
  if (isSaleBeaconError(e)) {
    showResult('error', e.issues.map((i) => `${i.field}: ${i.message}`).join('; '));
  } else {
    showResult('error', String(e));
  }
  console.error(e);
}
