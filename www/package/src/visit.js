// The `visit` module's glue (wasm-bindgen's, generated at build time), as a file of its own: the
// tracker imports it only when a page needs the `visit` rules (rules.js), so a thank-you page,
// which needs only the `order` rules, does not download it. Only what rules.js calls is
// re-exported, so the bundle drops the rest of the glue (initSync).
export { default, put, capture, describe, visitor, minorUnits } from './salebeacon_visit.js';
