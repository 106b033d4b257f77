// salebeacon/server: what a merchant's backend needs, in any JavaScript runtime with WebCrypto
// (Node 18+, Deno, Bun, Cloudflare Workers, Next.js route handlers). No dependency, no wasm.
//
// signOrderToken mints the order token the proxy checks when it requires one
// (`require_order_token`): `<expiry unix seconds>.<hex HMAC-SHA256(secret, message)>`, where the
// message is `${order_id}\n${total or ''}\n${currency in lower case}\n${expiry}`. The format is
// the proxy's (proxy/src/trust/order_token.rs); a test signs here and has the proxy verify.

const encoder = new TextEncoder();

function fail(message, issues) {
  const e = new Error(`salebeacon: ${message}: ${issues.map((i) => `${i.field} ${i.message}`).join('; ')}`);
  e.name = 'SaleBeaconError';
  e.code = 'invalid_config';
  e.issues = issues;
  return e;
}

/**
 * Signs an order for the page's `trackSale({ ..., order_token })`.
 * @param {{ orderId: string, total?: number | null, currency: string }} order
 * @param {{ secret: string, ttlSecs?: number, now?: number }} options
 * @returns {Promise<string>}
 */
export async function signOrderToken(order, options) {
  const issues = [];
  const o = order && typeof order === 'object' ? order : {};
  const opts = options && typeof options === 'object' ? options : {};
  if (typeof o.orderId !== 'string' || o.orderId === '') issues.push({ field: 'orderId', message: 'must be the order id, a non-empty string' });
  const total = o.total ?? null;
  if (total !== null && !(Number.isSafeInteger(total) && total >= 0)) {
    issues.push({ field: 'total', message: 'must be the total in minor units (an integer, e.g. 12999 for 129.99 USD), or omitted' });
  }
  if (typeof o.currency !== 'string' || !/^[A-Za-z]{3}$/.test(o.currency.trim())) issues.push({ field: 'currency', message: 'must be an ISO 4217 code such as "usd"' });
  if (typeof opts.secret !== 'string' || opts.secret.length < 16) issues.push({ field: 'secret', message: 'must be SALEBEACON_ORDER_TOKEN_SECRET (at least 16 characters)' });
  const ttl = opts.ttlSecs ?? 3600;
  if (!(Number.isSafeInteger(ttl) && ttl > 0)) issues.push({ field: 'ttlSecs', message: 'must be a positive number of seconds' });
  if (issues.length) throw fail('cannot sign this order', issues);
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  const expiry = now + ttl;
  const message = `${o.orderId}\n${total === null ? '' : total}\n${o.currency.trim().toLowerCase()}\n${expiry}`;
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) throw fail('no WebCrypto in this runtime', [{ field: 'crypto', message: 'globalThis.crypto.subtle is missing (Node 18+, Deno, Bun and Workers have it)' }]);
  const key = await subtle.importKey('raw', encoder.encode(opts.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = new Uint8Array(await subtle.sign('HMAC', key, encoder.encode(message)));
  let hex = '';
  for (const b of sig) hex += b.toString(16).padStart(2, '0');
  return `${expiry}.${hex}`;
}
