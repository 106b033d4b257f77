// Generated from the Rust core (src/contract.rs, `contract::javascript`) by `cargo xtask
// build`: the names and defaults the browser tracker shares with the proxy. Do not edit.
export const AFF_COOKIE = 'sb_aff';
export const VID_COOKIE = 'sb_vid';
export const PREFIX = 'salebeacon:';
export const OUTBOX_KEY = 'outbox';
export const RAW_KEY = 'r:';
export const WAIT_COOKIE = 'sb_wait';
export const SALES_PATH = '/sales';
export const TOUCH_PATH = '/touch';
export const STATUS_DUPLICATE = 'duplicate';
export const DEFAULT_PARAMS = ['ref', 'aff', 'via'];
export const GROWI_PARAMS = ['growi_user_id', 'growi_campaign_id'];
export const MIN_WINDOW_DAYS = 1;
export const MAX_WINDOW_DAYS = 365;
export const DEFAULT_WINDOW_DAYS = 30;
export const MODELS = ['last_click', 'first_click'];
export const CONSENTS = ['granted', 'pending', 'denied'];
export const OUTBOX_MAX_AGE_MS = 604800000;
export const ERROR_CODES = ['invalid_sale', 'invalid_config', 'not_initialized', 'invalid_amount', 'rejected', 'invalid_command'];
