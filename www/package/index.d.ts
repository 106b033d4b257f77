// Type declarations of the salebeacon npm package: the one written source of its public types
// (the wasm glue's declarations, salebeacon_wasm.d.ts, import them from here).

/** A sale, with Growi's own field names. Amounts are integers in minor units (cents). */
export interface SaleInput {
  order_id: string | number;
  /** Order total in minor units (12999 = $129.99). `total` or `subtotal` is required. */
  total?: number;
  subtotal?: number;
  /** ISO 4217 code, e.g. "usd" (any case; sent lower case). */
  currency: string;
  /** Normally filled in from the stored attribution; set it only to override. */
  campaign_affiliate_id?: string;
  growi_user_id?: number;
  growi_campaign_id?: number;
  /** ISO 8601; defaults to now. */
  occurred_at?: string;
  /** At most 255 bytes of UTF-8. */
  customer_email?: string;
  /** At most 255 bytes of UTF-8. */
  customer_name?: string;
  /** A UUID v4 (any case; sent lower case). Normally filled in with `visitorId()`. */
  visitor_uid?: string;
  sale_type?: "one_time" | "subscription";
  /** The merchant backend's signature over the order, when the proxy requires one. */
  order_token?: string;
}

export interface InitOptions {
  /** The proxy's base: a path on this origin or an http(s) URL. Default "/salebeacon". */
  endpoint?: string;
  /** URL parameters that carry an affiliate tag. Default ["ref", "aff", "via"]. */
  params?: string[];
  /** Default "last_click". */
  model?: "last_click" | "first_click";
  /** Attribution window in days, 1–365. Default 30. */
  windowDays?: number;
  /** "auto" (default): the widest domain the browser accepts, or a fixed domain. */
  cookieDomain?: "auto" | (string & {});
  /** Default "granted". */
  consent?: ConsentState;
  /** Default true: with Global Privacy Control on, nothing is stored or sent. */
  respectGpc?: boolean;
  /** Default false: remove the captured parameters from the address bar. */
  cleanUrl?: boolean;
  /**
   * Purchase events to record as sales with no code of yours: `['ga4']` reads the GA4
   * `purchase` events the shop sends (`dataLayer.push({ event: 'purchase', ecommerce })` or
   * `gtag('event', 'purchase', params)`): `transaction_id` is the order id, `value` the total.
   * The script tag's form is `data-capture="ga4"`. Default none.
   */
  capture?: Array<'ga4'>;
}

export type ConsentState = "granted" | "pending" | "denied";

/**
 * - `sent`: the proxy durably accepted the sale;
 * - `queued`: stored in this browser, it will be retried;
 * - `duplicate`: this order was already delivered;
 * - `unattributed`: no affiliate attribution in the window (nothing is sent);
 * - `blocked`: consent denied or Global Privacy Control (nothing is stored or sent).
 */
export type TrackStatus = "sent" | "queued" | "duplicate" | "unattributed" | "blocked";

export interface TrackResult {
  status: TrackStatus;
}

export interface AttributionInfo {
  campaign_affiliate_id?: string;
  growi_user_id?: number;
  growi_campaign_id?: number;
  model: "last_click" | "first_click";
  /** ISO 8601, UTC. */
  captured_at: string;
  /** ISO 8601, UTC. */
  expires_at: string;
}

export interface SaleBeaconIssue {
  field: string;
  message: string;
}

export type SaleBeaconErrorCode =
  | "invalid_sale"
  | "invalid_config"
  | "not_initialized"
  | "invalid_amount"
  | "rejected"
  /** The script-tag form only: `salebeacon('<unknown command>', ...)`. */
  | "invalid_command";

/** Every rejection and throw of salebeacon: an `Error` with a `code` and every `issue`. */
export interface SaleBeaconError extends Error {
  name: "SaleBeaconError";
  code: SaleBeaconErrorCode;
  issues: SaleBeaconIssue[];
}

/** What `load()` accepts: where the .wasm file is, or its bytes / compiled module. */
export type WasmSource =
  | string
  | URL
  | Request
  | Response
  | BufferSource
  | WebAssembly.Module
  | Promise<Response>;

/**
 * Starts the tracker on this page: loads the WebAssembly module (once), reads the options and
 * captures attribution from the page's URL. Rejects with a SaleBeaconError (`invalid_config`).
 */
export function init(options?: InitOptions): Promise<void>;

/**
 * Records a sale. Resolves with its status; rejects with a SaleBeaconError (`invalid_sale`,
 * `not_initialized` before `init`, `rejected` when the proxy refuses it for good).
 */
export function trackSale(sale: SaleInput): Promise<TrackResult>;

/** Changes consent at run time. Rejects with a SaleBeaconError before `init`. */
export function consent(state: ConsentState): Promise<void>;

/** The current attribution; `null` when there is none, or before `init()` resolved. */
export function attribution(): AttributionInfo | null;

/** The visitor uid (a UUID v4); `null` when nothing may be stored, or before `init()` resolved. */
export function visitorId(): string | null;

/**
 * Converts a decimal amount into integer minor units with the currency's exponent, exactly
 * (`"19.99"`, `"usd"` → 1999; `"1500"`, `"jpy"` → 1500). Throws a SaleBeaconError
 * (`invalid_amount`) on more decimals than the currency has or an unknown currency, and
 * (`not_initialized`) before the module is loaded (await `init()` or `load()` first).
 */
export function toMinorUnits(amount: string | number, currency: string): number;

/**
 * Loads the WebAssembly module, once. `init()` does this for you; call it to start the download
 * early or to load the module from another place.
 */
export function load(moduleOrPath?: WasmSource): Promise<void>;

/** Narrows a caught value to a SaleBeaconError. */
export function isSaleBeaconError(e: unknown): e is SaleBeaconError;
