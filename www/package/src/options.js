// `init(options)`: the JavaScript options object, checked, with the defaults of the contract
// (contract.js, from the core) and one issue per bad option (an unknown name gets a "did you
// mean"). Options are the JS API's own configuration, so they are read here; every rule about
// what a sale, a tag or an amount is worth stays in the WebAssembly module.
import { DEFAULT_PARAMS, MIN_WINDOW_DAYS, MAX_WINDOW_DAYS, DEFAULT_WINDOW_DAYS, MODELS, CONSENTS } from './contract.js';
import { fail } from './errors.js';

const NAMES = ['endpoint', 'params', 'model', 'windowDays', 'cookieDomain', 'consent', 'respectGpc', 'cleanUrl', 'capture'];
/** What `capture` can name: the purchase events the tracker may read (ga4.js). */
const CAPTURES = ['ga4'];

const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : `a ${typeof v}`);

/** The known name a differently cased or separated name meant (`windowdays`, `window_days`). */
const suggest = (name) => NAMES.find((k) => k.toLowerCase() == name.toLowerCase().replace(/[-_]/g, ''));

export function parseOptions(o) {
  const r = {
    endpoint: '/salebeacon',
    params: DEFAULT_PARAMS,
    model: MODELS[0],
    windowDays: DEFAULT_WINDOW_DAYS,
    cookieDomain: 'auto',
    consent: CONSENTS[0],
    respectGpc: true,
    cleanUrl: false,
    capture: [],
  };
  if (o == null) return r;
  if (typeof o !== 'object' || Array.isArray(o)) {
    throw fail('invalid_config', 'invalid init options', [{ field: 'options', message: `must be an object, not ${kind(o)}` }]);
  }
  const issues = [];
  const bad = (field, message) => issues.push({ field, message });
  for (const k of Object.keys(o)) {
    if (!NAMES.includes(k)) {
      const s = suggest(k);
      bad(k, s ? `is not an init option; did you mean ${s}?` : `is not an init option (known: ${NAMES.join(', ')})`);
    }
  }
  const v = (k) => o[k];
  let x;
  if ((x = v('endpoint')) !== undefined) {
    if (typeof x !== 'string') bad('endpoint', `must be a string, not ${kind(x)}`);
    else if ((x = x.trim().replace(/\/+$/, '')) === '' || /^(\/|https?:\/\/)/.test(x)) r.endpoint = x;
    else bad('endpoint', 'must be a path like "/salebeacon" or an http(s) URL');
  }
  if ((x = v('params')) !== undefined) {
    if (Array.isArray(x) && x.length && x.every((p) => typeof p === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(p))) r.params = x;
    else bad('params', 'must be a non-empty list of parameter names (letters, digits, "_", "." or "-")');
  }
  if ((x = v('model')) !== undefined) {
    if (MODELS.includes(x)) r.model = x;
    else bad('model', `must be ${MODELS.map((m) => `"${m}"`).join(' or ')}`);
  }
  if ((x = v('windowDays')) !== undefined) {
    if (Number.isInteger(x) && x >= MIN_WINDOW_DAYS && x <= MAX_WINDOW_DAYS) r.windowDays = x;
    else bad('windowDays', `must be a whole number of days, ${MIN_WINDOW_DAYS}-${MAX_WINDOW_DAYS}`);
  }
  if ((x = v('cookieDomain')) !== undefined) {
    if (typeof x === 'string' && (x === 'auto' || /^\.?[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(x))) r.cookieDomain = x.replace(/^\./, '');
    else bad('cookieDomain', 'must be "auto" or a domain such as "example.com"');
  }
  if ((x = v('consent')) !== undefined) {
    if (CONSENTS.includes(x)) r.consent = x;
    else bad('consent', `must be ${CONSENTS.map((c) => `"${c}"`).join(', ')}`);
  }
  for (const k of ['respectGpc', 'cleanUrl']) {
    if ((x = v(k)) !== undefined) {
      if (typeof x === 'boolean') r[k] = x;
      else bad(k, `must be true or false, not ${kind(x)}`);
    }
  }
  if ((x = v('capture')) !== undefined) {
    // A string names one (the loader tag's data-capture="ga4").
    if (typeof x == 'string') x = [x];
    if (Array.isArray(x) && x.every((c) => CAPTURES.includes(c))) r.capture = x;
    else bad('capture', 'must be ["ga4"] or []');
  }
  if (issues.length) throw fail('invalid_config', 'invalid init options', issues);
  return r;
}
