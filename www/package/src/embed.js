// The script-tag form's command dispatcher, started by the loader once a page has work: it
// replays the queued `salebeacon(...)` calls in order and then answers them directly. It lives in
// the tracker, not in the loader, so a quiet page never downloads it.
import { fail } from './errors.js';

const N = 'salebeacon';

/**
 * Takes over `window.salebeacon` from the loader's stub. `api` is the tracker (this package's
 * exports), `opts` the options from the loader tag's data-* attributes merged under any queued
 * `init`, `hints` what the loader already fetched.
 */
export function boot(api, stub, opts, hints) {
  const c = console;
  const w = window;
  const d = document;
  const q = [].slice.call(stub.q || []);
  const merge = (x) => Object.assign({}, opts, x);
  let options = opts;
  for (const cmd of q) if (cmd[0] == 'init') options = merge(cmd[1]);
  let ok = false;

  // Logs the outcome; calls cb(err, result). The returned promise still rejects for a caller that
  // awaits it, but never surfaces as an unhandled rejection (error monitors report those).
  function report(p, what, cb) {
    p.then(
      (r) => {
        what && c.info(`${N}: ${what}: ${r.status}`);
        cb && cb(null, r);
      },
      (e) => {
        e && e.issues ? c.error(e.message, e.issues) : c.error(e);
        cb && cb(e);
      },
    );
    p.catch(() => {});
    return p;
  }
  function run(cmd, x, cb) {
    const p =
      cmd == 'sale' ? api.trackSale(x)
      : cmd == 'consent' ? api.consent(x)
      : cmd == 'init' ? api.init(merge(x), { need: [] })
      : cmd == 'ready' ? (ok ? api._need('visit').then(() => x(api)).then(() => api) : Promise.reject(fail('not_initialized', 'salebeacon is not initialized', [{ field: 'init', message: 'init failed; see the error above' }])))
      : Promise.reject(fail('invalid_command', 'invalid command', [{ field: 'command', message: `unknown command "${cmd}" (sale, consent, init, ready)` }]));
    return report(p, cmd == 'sale' && `order ${x && x.order_id}`, typeof cb == 'function' && cb);
  }
  // The no-code form: <script type="application/json" data-salebeacon-sale>{...}</script>
  function scan() {
    for (const el of d.querySelectorAll(`script[type="application/json"][data-${N}-sale]`)) {
      if (el._sb) continue;
      el._sb = 1;
      let sale;
      try {
        sale = JSON.parse(el.textContent);
      } catch (e) {
        c.error(`${N}: the data-${N}-sale JSON is not valid: ${e.message}`);
        continue;
      }
      w[N]('sale', sale);
    }
  }
  const started = report(api.init(options, hints)).then(() => (ok = true), () => {});
  const disp = (w[N] = function () {
    const x = arguments;
    const p = started.then(() => run(x[0], x[1], x[2]));
    p.catch(() => {});
    return p;
  });
  disp.q = [];
  disp.loaded = true;
  for (const cmd of q) cmd[0] != 'init' && disp.apply(0, cmd);
  d.readyState == 'loading' ? d.addEventListener('DOMContentLoaded', scan) : started.then(scan);
  return started;
}
