// salebeacon: conversion tracking for Growi creator campaigns (npm entry point).
//
// The tracker is WebAssembly. This module loads it on first use (once), from the file next to
// this one, so a bundler sees the `new URL(<the .wasm>, import.meta.url)` below and ships the
// asset. Every async function waits for that load; the sync ones need it to have happened.
import load_wasm, * as wasm from './salebeacon_wasm.js';

let loading;
let loaded = false;

function notInitialized(what) {
  return saleBeaconError('not_initialized', 'salebeacon is not initialized', [{ field: 'init', message: what }]);
}

/**
 * Loads the WebAssembly module (once; later calls share the same promise). `init()` calls it for
 * you; call it yourself only to load the module from somewhere else (a URL, a Response, bytes or
 * a WebAssembly.Module) or to start the download early.
 */
export function load(moduleOrPath) {
  if (!loading) {
    const module_or_path = moduleOrPath ?? new URL('./salebeacon_wasm_bg.wasm', import.meta.url);
    loading = load_wasm({ module_or_path }).then(
      () => {
        loaded = true;
      },
      (e) => {
        loading = undefined;
        throw e;
      },
    );
  }
  return loading;
}

/** Starts the tracker on this page: reads options, captures attribution from the URL. */
export async function init(options) {
  await load();
  return wasm.init(options);
}

function saleBeaconError(code, what, issues) {
  const err = new Error(`salebeacon: ${what}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`);
  err.name = 'SaleBeaconError';
  err.code = code;
  err.issues = issues;
  return err;
}

/**
 * A plain copy of the sale's own fields, each read once. A shop's object can be anything (a
 * getter that throws, a Proxy): whatever throws while it is read is reported as an invalid sale
 * naming the field, never thrown into the page and never left hanging.
 */
function readSale(sale) {
  if (sale === null || typeof sale !== 'object' || Array.isArray(sale)) return sale;
  const fail = (field, e) => ({ field, message: `could not be read (${(e && e.message) || e})` });
  let keys;
  try {
    keys = Object.keys(sale);
  } catch (e) {
    throw saleBeaconError('invalid_sale', 'invalid sale', [fail('sale', e)]);
  }
  const copy = {};
  const issues = [];
  for (const k of keys) {
    try {
      const v = sale[k];
      // Nested values only ever get a "must be a number/string" answer: keep their kind only.
      copy[k] = v !== null && typeof v === 'object' ? (Array.isArray(v) ? [] : {}) : v;
    } catch (e) {
      issues.push(fail(k, e));
    }
  }
  if (issues.length) throw saleBeaconError('invalid_sale', 'invalid sale', issues);
  return copy;
}

/** Records a sale; resolves `{ status }`, rejects with a SaleBeaconError listing every problem. */
export async function trackSale(sale) {
  const plain = readSale(sale);
  await load();
  return wasm.trackSale(plain);
}

/** Changes consent at run time: 'granted' | 'pending' | 'denied'. */
export async function consent(state) {
  await load();
  return wasm.consent(state);
}

function orNull(f) {
  if (!loaded) return null;
  try {
    return f();
  } catch (e) {
    if (isSaleBeaconError(e) && e.code === 'not_initialized') return null;
    throw e;
  }
}

/** The current attribution, or null (none, or before init() resolved). */
export function attribution() {
  return orNull(wasm.attribution);
}

/** The visitor uid (a UUID v4), or null (nothing may be stored, or before init() resolved). */
export function visitorId() {
  return orNull(wasm.visitorId) ?? null;
}

/** Decimal amount → integer minor units of the currency, exactly ('19.99', 'usd' → 1999). */
export function toMinorUnits(amount, currency) {
  if (!loaded) {
    throw notInitialized('the module is still loading: await init() (or load()) before toMinorUnits()');
  }
  return wasm.toMinorUnits(amount, currency);
}

/** Whether `e` is an error thrown or rejected by salebeacon (works across bundles and realms). */
export function isSaleBeaconError(e) {
  return (
    typeof e === 'object' &&
    e !== null &&
    e.name === 'SaleBeaconError' &&
    typeof e.code === 'string' &&
    Array.isArray(e.issues)
  );
}
