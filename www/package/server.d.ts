/** The order a token vouches for: what the page's `trackSale` will send. */
export interface OrderToSign {
  /** The order id, exactly as the page sends it as `order_id`. */
  orderId: string;
  /** The total in minor units (cents), exactly as sent as `total`; omit when the sale has none. */
  total?: number | null;
  /** ISO 4217 code, any case. */
  currency: string;
}

export interface SignOptions {
  /** SALEBEACON_ORDER_TOKEN_SECRET, the secret the proxy verifies with (at least 16 characters). */
  secret: string;
  /** How long the token is valid, in seconds (default 3600). */
  ttlSecs?: number;
  /** The current time in milliseconds (default Date.now()), for tests. */
  now?: number;
}

/**
 * Mints the order token the proxy checks (`require_order_token`): pass it to the page, which sends
 * it as `order_token` with `trackSale`. Uses WebCrypto: Node 18+, Deno, Bun, Cloudflare Workers.
 * Rejects with a SaleBeaconError (`code: 'invalid_config'`) naming every bad field.
 */
export function signOrderToken(order: OrderToSign, options: SignOptions): Promise<string>;
