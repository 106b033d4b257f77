import { PRODUCT, money } from './shop.js';

const form = document.getElementById('checkout');
const qty = form.elements.quantity;
const total = document.getElementById('total');
const update = () => (total.textContent = money(PRODUCT.price * Number(qty.value || 1)));
qty.addEventListener('input', update);
update();

function orderId() {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return 'ORD-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('').toUpperCase();
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = form.elements;
  const order = {
    order_id: orderId(),
    total: PRODUCT.price * Number(f.quantity.value),
    currency: PRODUCT.currency,
    customer_email: f.email.value.trim(),
    customer_name: f.name.value.trim(),
  };
  // Personal data stays in this tab's sessionStorage; the URL only carries the order id.
  sessionStorage.setItem('demo:order:' + order.order_id, JSON.stringify(order));
  location.href = `thanks-${f.integration.value}.html?order=${encodeURIComponent(order.order_id)}`;
});
