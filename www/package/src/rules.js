// The WebAssembly modules that hold the rules, loaded only when a page needs them.
//
// The rules are built into two small modules from the same Rust crate (see src/web.rs):
// - `visit`: capture attribution from URL parameters, describe it, make a visitor uid, convert
//   amounts; what a landing page needs, and what the API's synchronous calls need;
// - `order`: validate a sale, schedule retries; what a thank-you page needs.
// A page downloads at most what it uses. Each is fetched and compiled once (streaming compilation,
// off the main thread where the browser can), from a source the loader may hand over early.
// Named imports, so the bundle keeps only what is called (not the glue's initSync). The `visit`
// glue is a file of its own (visit.js), imported when first needed: the thank-you page, the page
// that weighs most, does not download it.
import initOrder, { put as oPut, sale, nextAttempt } from './salebeacon_order.js';

const glue = {
  visit: () => import('./visit.js').then((g) => [g.default, g]),
  order: () => [initOrder, { put: oPut, sale, nextAttempt }],
};
// Written out literally so that bundlers (Vite, webpack 5) see the assets and ship them.
const urls = {
  visit: () => new URL('./salebeacon_visit_bg.wasm', import.meta.url),
  order: () => new URL('./salebeacon_order_bg.wasm', import.meta.url),
};
const sources = {};
const loading = {};
const ready = {};

/** Where to load a module from (a URL, a Response, bytes, a compiled module, or a promise). */
export function provide(which, source) {
  if (source != null && !loading[which]) sources[which] = source;
}

/** Resolves in a later task: lets the browser paint and handle input between two steps. */
export const later = () => new Promise((r) => setTimeout(r));

/** Loads one module, once; resolves with its exports. */
export function need(which) {
  if (!loading[which]) {
    let exports;
    // Started in a task of its own, and the task ends once the module is instantiated: its body
    // may be consumed on the main thread (all of it, when it has already arrived), so neither
    // what called nor what uses it shares that task. No long task at start-up on a slow phone.
    loading[which] = later()
      .then(glue[which])
      .then(([init, x]) => ((exports = x), init({ module_or_path: sources[which] ?? urls[which]() })))
      .then(later)
      .then(
        () => (ready[which] = exports),
        (e) => {
          loading[which] = undefined;
          throw e;
        },
      );
  }
  return loading[which];
}

/** A module's exports if it is loaded, else undefined. */
export const loaded = (which) => ready[which];


/** Hands a plain object's fields to a module, each by type (`put` in src/web.rs). */
export function putFields(m, obj) {
  for (const [k, v] of Object.entries(obj)) {
    const t = typeof v;
    if (v == null) m.put(k, 0, '', 0);
    else if (t === 'boolean') m.put(k, 1, '', v ? 1 : 0);
    else if (t === 'number') m.put(k, 2, '', v);
    else if (t === 'string') m.put(k, 3, v, 0);
    else m.put(k, Array.isArray(v) ? 4 : 5, '', 0);
  }
}
