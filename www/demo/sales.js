// The demo's "Recorded sales" page: what the Growi sandbox holds (its own control API, which
// answers any origin) and the proxy's queue depth (its public /healthz). The production proxy
// carries no demo-only route; per-sale delivery state is the admin API's business.
import { money, sandboxSales, sandboxUrl } from './shop.js';

const status = document.getElementById('sales-status');
const queue = document.getElementById('queue');

function cell(tr, text, cls) {
  const td = tr.insertCell();
  td.textContent = text ?? '–';
  if (cls) td.className = cls;
}

function fill(id, rows, columns, empty) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  if (!rows.length) {
    const tr = body.insertRow();
    cell(tr, empty, 'empty');
    tr.cells[0].colSpan = columns.length;
    return;
  }
  for (const row of rows) {
    const tr = body.insertRow();
    tr.dataset.order = row.external_id ?? '';
    for (const [f, cls] of columns) cell(tr, f(row), cls);
  }
}

async function refresh() {
  const sales = await sandboxSales();
  status.textContent = sales
    ? `Updated ${new Date().toLocaleTimeString()}.`
    : `The sandbox at ${sandboxUrl()} does not answer (start the demo with \`cargo xtask demo\`, or open this page with ?sandbox=URL).`;
  // Newest first, by Growi's id.
  const rows = (sales || [])
    .filter((s) => s.platform === 'website')
    .sort((a, b) => b.id - a.id);
  fill('sandbox-sales', rows, [
    [(s) => s.external_id, 'mono'],
    [(s) => s.campaign_affiliate_id ?? (s.growi_user_id && `user ${s.growi_user_id}`)],
    [(s) => (s.total != null ? money(s.total, s.currency || 'usd') : null), 'num'],
    [(s) => (s.commission != null ? money(s.commission, s.currency || 'usd') : null), 'num wide-only'],
    [(s) => s.status, 'state'],
    [(s) => s.visitor_uid && s.visitor_uid.slice(0, 8) + '…', 'mono wide-only'],
    [(s) => s.occurred_at && new Date(s.occurred_at).toLocaleString(), 'wide-only'],
  ], 'No sales yet.');
  try {
    const h = await (await fetch('/salebeacon/healthz')).json();
    queue.dataset.depth = String(h.queue_depth);
    queue.textContent = h.queue_depth === 0
      ? 'The proxy has delivered everything it accepted.'
      : `${h.queue_depth} waiting in the proxy's outbox (Growi takes one request every 2 s).`;
  } catch (e) {
    queue.textContent = `The proxy does not answer (${e.message}).`;
  }
}

refresh();
setInterval(refresh, 2000);
