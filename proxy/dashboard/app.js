// The dashboard's script: signs in, lists and filters sales, and sends the back office's actions
// (retry, cancel, refund, correct, erase) to the admin API of the proxy that served it.
//
// Same origin only (the CSP allows nothing else). The session lives in an HttpOnly cookie this
// script cannot read; the CSRF token it gets from GET session is kept in memory and sent as
// X-CSRF-Token on every change. Every value from the outbox reaches the page through textContent,
// never as HTML.
'use strict';

const api = new URL('./', location.href).pathname; // {base}/admin/
let csrf = '';
let current = null; // the sale shown in the dialog

const $ = (id) => document.getElementById(id);

async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  const r = await fetch(api + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (r.status === 401 && path !== 'session') {
    showSignIn('Your session ended; sign in again.');
  }
  return { ok: r.ok, status: r.status, data };
}

function problem(res) {
  const d = res.data || {};
  const issues = Array.isArray(d.issues)
    ? ': ' + d.issues.map((i) => `${i.field} ${i.message}`).join('; ')
    : '';
  return (d.error || `HTTP ${res.status}`) + issues;
}

// Money: the currency's own minor unit (JPY none, KWD three), as Intl knows it.
function exponent(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
      .maximumFractionDigits;
  } catch {
    return 2;
  }
}

function money(minor, currency) {
  if (typeof minor !== 'number' || !currency) return '';
  const e = exponent(currency);
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency.toUpperCase() })
      .format(minor / 10 ** e);
  } catch {
    return `${(minor / 10 ** e).toFixed(e)} ${currency}`;
  }
}

function toMinor(text, currency) {
  const m = /^\s*(\d{1,12})(?:[.,](\d+))?\s*$/.exec(text);
  const e = exponent(currency);
  if (!m || (m[2] || '').length > e) return null;
  const frac = ((m[2] || '') + '0'.repeat(e)).slice(0, e);
  return Number(m[1]) * 10 ** e + (e ? Number(frac) : 0);
}

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function showSignIn(message) {
  csrf = '';
  $('sales-view').hidden = true;
  $('sign-out').hidden = true;
  $('summary').textContent = '';
  $('sign-in-view').hidden = false;
  $('sign-in-error').textContent = message || '';
  if ($('detail').open) $('detail').close();
}

async function showSales() {
  $('sign-in-view').hidden = true;
  $('sales-view').hidden = false;
  $('sign-out').hidden = false;
  await Promise.all([loadSummary(), loadSales(), loadReconcile()]);
}

async function loadSummary() {
  const r = await call('GET', 'summary');
  if (!r.ok) return;
  const s = r.data;
  const parts = [];
  if (s.queue_depth === 0) parts.push('Nothing waiting');
  else {
    const done = new Date(s.done_by);
    const sameDay = done.toDateString() === new Date().toDateString();
    const at = done.toLocaleString(undefined, sameDay ? { timeStyle: 'short' } : { dateStyle: 'medium', timeStyle: 'short' });
    parts.push(`${s.queue_depth} waiting, done by ${at}`);
  }
  if (s.failed) parts.push(`${s.failed} failed`);
  parts.push(`sender ${s.sender}`);
  $('summary').textContent = parts.join(' · ');
}

async function loadReconcile() {
  // GET reconcile answers 200 with `last: null` before the first report (no 404 in the console).
  const r = await call('GET', 'reconcile');
  const d = r.ok && r.data ? r.data.last : null;
  if (!d) {
    $('reconcile').hidden = true;
    return;
  }
  const n = Array.isArray(d.differences) ? d.differences.length : 0;
  const span = `${d.since} to ${d.until}`;
  $('reconcile-text').textContent = `${when(d.finished_at)} (${span}): ${
    n === 0 ? 'everything agrees with Growi' : `${n} order${n === 1 ? '' : 's'} differ: ${d.differences.slice(0, 5).map((x) => `${x.order_id} (${x.kind.replace(/_/g, ' ')})`).join(', ')}${n > 5 ? ', ...' : ''}`}`;
  $('reconcile').hidden = false;
}

function filters() {
  const f = new FormData($('filters'));
  const q = new URLSearchParams({ kind: 'create', order: 'newest', limit: '200' });
  for (const [k, v] of f) if (v) q.set(k, String(v));
  return q;
}

function cell(tr, label, text, cls) {
  const td = document.createElement('td');
  td.dataset.label = label;
  if (cls) {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    td.append(span);
  } else td.textContent = text;
  tr.append(td);
}

async function loadSales() {
  $('list-error').textContent = '';
  const r = await call('GET', `sales?${filters()}`);
  const tbody = $('sales').tBodies[0];
  tbody.replaceChildren();
  if (!r.ok) {
    $('list-error').textContent = problem(r);
    return;
  }
  for (const job of r.data.jobs) {
    const b = job.body || {};
    const tr = document.createElement('tr');
    tr.tabIndex = 0;
    tr.dataset.orderId = job.order_id;
    cell(tr, 'Order', job.order_id);
    cell(tr, 'Created', when(job.created_at));
    cell(tr, 'Total', money(b.total ?? b.subtotal, b.currency));
    cell(tr, 'Affiliate', b.campaign_affiliate_id || (b.growi_user_id ? `user ${b.growi_user_id}` : ''));
    cell(tr, 'State', job.state, `state ${job.state}`);
    cell(tr, 'Growi id', job.growi_id ?? '');
    cell(tr, 'Attempts', String(job.attempts));
    cell(tr, 'Last error', job.last_error || '');
    const open = () => openSale(job.order_id);
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    tbody.append(tr);
  }
  $('empty').hidden = r.data.jobs.length > 0;
}

function field(dl, name, value) {
  if (value === undefined || value === null || value === '') return;
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = String(value);
  dl.append(dt, dd);
}

async function openSale(orderId) {
  const r = await call('GET', `sales/${encodeURIComponent(orderId)}`);
  if (!r.ok) {
    $('list-error').textContent = problem(r);
    return;
  }
  current = r.data;
  const s = current.sale || current;
  const b = s.body || {};
  $('detail-title').textContent = `Order ${s.order_id}`;
  const dl = $('detail-fields');
  dl.replaceChildren();
  field(dl, 'State', s.state);
  field(dl, 'Total', money(b.total, b.currency));
  field(dl, 'Subtotal', money(b.subtotal, b.currency));
  field(dl, 'Affiliate', b.campaign_affiliate_id);
  field(dl, 'Visitor', b.visitor_uid);
  field(dl, 'Occurred', when(b.occurred_at));
  field(dl, 'Customer', [b.customer_name, b.customer_email].filter(Boolean).join(' · '));
  field(dl, 'Growi id', s.growi_id);
  field(dl, 'Attempts', s.attempts);
  field(dl, 'Last status', s.last_status);
  field(dl, 'Last error', s.last_error);
  field(dl, 'Note', s.note);
  field(dl, 'Received', when(s.created_at));
  field(dl, 'Sent', when(s.sent_at));
  const ul = $('detail-updates');
  ul.replaceChildren();
  for (const u of current.updates || []) {
    const li = document.createElement('li');
    li.textContent = `${when(u.created_at)}: ${JSON.stringify(u.body)} (${u.state}${u.last_error ? `: ${u.last_error}` : ''})`;
    ul.append(li);
  }
  if (!ul.children.length) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'none';
    ul.append(li);
  }
  // A failed create never reached Growi: only a retry (or an erasure) makes sense for it.
  $('retry').hidden = s.state !== 'failed';
  const atGrowi = s.state !== 'failed';
  $('cancel').hidden = !atGrowi;
  $('refund').hidden = !atGrowi;
  $('correct').hidden = !atGrowi;
  $('detail-message').textContent = '';
  if (!$('detail').open) $('detail').showModal();
}

// The outcome is shown once the list and the sale are fresh again, so what the message says is
// what the page shows.
async function act(method, path, body, done) {
  $('detail-message').textContent = 'Working...';
  const r = await call(method, path, body);
  if (!r.ok) {
    $('detail-message').textContent = problem(r);
    return;
  }
  await Promise.all([loadSummary(), loadSales()]);
  if (current) await openSale((current.sale || current).order_id);
  $('detail-message').textContent = done;
}

function saleOf() {
  return current && (current.sale || current);
}

function wire() {
  $('sign-in').addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = $('token').value;
    const r = await call('POST', 'session', { token });
    $('token').value = '';
    if (!r.ok) {
      $('sign-in-error').textContent = r.status === 401 ? 'That is not the admin token.' : problem(r);
      return;
    }
    csrf = r.data.csrf;
    await showSales();
  });
  $('sign-out').addEventListener('click', async () => {
    await call('DELETE', 'session');
    showSignIn('Signed out.');
  });
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    loadSales();
  });
  $('retry').addEventListener('click', () => {
    const s = saleOf();
    act('POST', `sales/${encodeURIComponent(s.order_id)}/retry`, undefined, 'Queued again.');
  });
  $('cancel').addEventListener('click', () => {
    const s = saleOf();
    if (!confirm(`Cancel order ${s.order_id} at Growi?`)) return;
    act('PATCH', `sales/${encodeURIComponent(s.order_id)}`, { status: 'cancelled' }, 'Cancellation queued.');
  });
  $('refund').addEventListener('submit', (e) => {
    e.preventDefault();
    const s = saleOf();
    const b = s.body || {};
    const refund = toMinor(e.target.amount.value, b.currency);
    if (refund === null || typeof b.total !== 'number' || refund > b.total) {
      $('detail-message').textContent = `Give an amount in ${String(b.currency).toUpperCase()} up to ${money(b.total, b.currency)}.`;
      return;
    }
    e.target.reset();
    act('PATCH', `sales/${encodeURIComponent(s.order_id)}`, { total: b.total - refund }, 'Refund queued.');
  });
  $('correct').addEventListener('submit', (e) => {
    e.preventDefault();
    const s = saleOf();
    const b = s.body || {};
    const total = toMinor(e.target.amount.value, b.currency);
    if (total === null) {
      $('detail-message').textContent = `Give an amount in ${String(b.currency).toUpperCase()}.`;
      return;
    }
    e.target.reset();
    act('PATCH', `sales/${encodeURIComponent(s.order_id)}`, { total }, 'Correction queued.');
  });
  $('erase').addEventListener('click', () => {
    const s = saleOf();
    if (!confirm(`Erase the customer's name, email and visitor id from order ${s.order_id}?`)) return;
    act('POST', 'erase', { order_id: s.order_id }, 'Personal data erased.');
  });
}

async function start() {
  wire();
  const r = await call('GET', 'session');
  if (r.ok && r.data.signed_in) {
    csrf = r.data.csrf;
    await showSales();
  } else {
    showSignIn(r.status === 503 ? problem(r) : '');
  }
}

start();
