// Lists what the sandbox recorded and the proxy's delivery state (demo-only endpoint).
import { money } from './shop.js';

const status = document.getElementById('sales-status');

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
    tr.dataset.order = row.order_id ?? row.external_id ?? '';
    for (const [f, cls] of columns) cell(tr, f(row), cls);
  }
}

async function refresh() {
  let data;
  try {
    const r = await fetch('/demo/api/sales', { headers: { accept: 'application/json' } });
    if (!r.ok) throw new Error(`GET /demo/api/sales answered ${r.status}`);
    data = await r.json();
    status.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  } catch (e) {
    status.textContent = `No sales feed (${e.message}): it is served by \`cargo xtask demo\`.`;
    data = {};
  }
  const sandbox = Array.isArray(data.sandbox) ? [...data.sandbox].reverse() : [];
  const proxy = Array.isArray(data.proxy) ? data.proxy : [];
  fill('sandbox-sales', sandbox, [
    [(s) => s.external_id ?? s.order_id, 'mono'],
    [(s) => s.campaign_affiliate_id ?? (s.growi_user_id && `user ${s.growi_user_id}`)],
    [(s) => (s.total != null ? money(s.total, s.currency || 'usd') : null), 'num'],
    [(s) => (s.commission != null ? money(s.commission, s.currency || 'usd') : null), 'num'],
    [(s) => s.visitor_uid && s.visitor_uid.slice(0, 8) + '…', 'mono'],
    [(s) => s.occurred_at && new Date(s.occurred_at).toLocaleString()],
  ], 'No sales yet.');
  fill('proxy-sales', proxy, [
    [(s) => s.order_id, 'mono'],
    [(s) => s.state],
    [(s) => String(s.attempts ?? '–'), 'num'],
    [(s) => (s.growi_id != null ? String(s.growi_id) : null), 'mono'],
    [(s) => s.last_error],
  ], 'Nothing in the proxy outbox yet.');
  for (const tr of document.querySelectorAll('#proxy-sales tbody tr')) {
    const st = tr.cells[1];
    if (st && tr.dataset.order) st.className = 'state state-' + st.textContent;
  }
}

refresh();
setInterval(refresh, 2000);
