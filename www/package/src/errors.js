// SaleBeaconError: every rejection and throw of the browser API is an `Error` named
// "SaleBeaconError" with a `code` (the core's error codes, contract.js) and every `issue`.
export function fail(code, what, issues) {
  const e = new Error(`salebeacon: ${what}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`);
  e.name = 'SaleBeaconError';
  e.code = code;
  e.issues = issues;
  return e;
}

/** Whether `e` is an error thrown or rejected by salebeacon (works across bundles and realms). */
export function isSaleBeaconError(e) {
  return !!e && e.name === 'SaleBeaconError' && typeof e.code === 'string' && Array.isArray(e.issues);
}

export const notInitialized = (message) =>
  fail('not_initialized', 'salebeacon is not initialized', [{ field: 'init', message }]);
