// The script-tag loader (salebeacon.js): reads the init options from its own data-* attributes,
// keeps the command queue, and loads the tracker only when the page has work for it.
//
// A page has work when its URL carries a creator's parameter, a sale waits in this browser's
// outbox (a mark says so, checked without blocking: mark.js), a command that needs the tracker
// is queued (sale, consent, ready), or the page holds a no-code sale (<script
// type="application/json" data-salebeacon-sale>). The loader decides only *whether* there is
// work, never what a value is worth: that is the tracker's WebAssembly (or, for a landing page
// captured at the edge and a sale at the edge, the same rules in the proxy). A quiet page costs
// this file and nothing else; so does a plain landing page on a same-origin proxy (one POST
// /touch), and a thank-you
// page whose visitor came from a creator (sale.js and one POST /sales: a sale at the edge); any
// other working page fetches the tracker and the rules module it needs at once, side by side,
// and the tracker then replays the queue (embed.js).
//
// The build (cargo xtask build) bundles this with contract.js and fills in __RUNTIME__,
// __VISIT__, __ORDER__, __VISIT_GLUE__ and __SALE__: the content-hashed file names of the
// tracker, its two modules, the `visit` module's glue and the sale at the edge. It builds it three
// times, with __WAITS__ null (salebeacon.js, which checks the mark), false and true (the two a
// same-origin proxy serves in its place when it knows: salebeacon.quiet.js, .waiting.js).
import { AFF_COOKIE, DEFAULT_PARAMS, GROWI_PARAMS, PREFIX, OUTBOX_KEY } from './contract.js';

(function (w, d) {
  const N = 'salebeacon';
  let stub = w[N];
  if (stub && stub.loaded) return;
  if (!stub) stub = w[N] = function () { (stub.q = stub.q || []).push(arguments); };
  const q = (stub.q = stub.q || []);
  const s = d.currentScript;
  const l = location;
  // What a quiet page runs touches no Web API it would not touch anyway: each first use of one
  // (`dataset`, `URL`, `URLSearchParams`, `navigator`) costs a quarter of a millisecond or so
  // (measured), as the browser builds its bindings. So attributes are read one by one, this
  // file's folder is cut out of its address by hand, the query is parsed only where a name
  // could be in it, and `navigator` is asked only on the way to the proxy.
  const a = (k) => s && s.getAttribute(`data-${k}`);
  const src = (s ? s.src : `/${N}/`).split('#')[0].split('?')[0];
  const dir = src.slice(0, src.lastIndexOf('/') + 1);
  const o = {};
  o.endpoint = a('endpoint') || dir.slice(dir.startsWith(l.origin + '/') && l.origin.length, -1);
  let x;
  for (const [k, n = k] of [['model'], ['cookieDomain', 'cookie-domain'], ['consent'], ['capture'], ['params'], ['windowDays', 'window-days']]) if ((x = a(n))) o[k] = x;
  for (const [k, n] of [['respectGpc', 'respect-gpc'], ['cleanUrl', 'clean-url']]) if ((x = a(n)) != null) o[k] = x != 'false' && x != '0';
  if (o.params) o.params = o.params.split(',').map((p) => p.trim()).filter(String);
  if (o.windowDays) o.windowDays = +o.windowDays;
  const noCode = () => d.querySelector(`script[type="application/json"][data-${N}-sale]`);
  const mark = PREFIX + OUTBOX_KEY;
  const url = (f) => dir + f;
  let boot, edge;

  // Fetches the tracker and the rules modules `need` names side by side, then hands over.
  function start(need) {
    if (boot) return boot;
    const hints = { need };
    for (const m of need) hints[m] = hints[m] || fetch(url(m == 'visit' ? __VISIT__ : __ORDER__));
    // The `visit` rules' glue too, so it does not wait for the tracker to ask for it.
    hints.visit && import(url(__VISIT_GLUE__)).catch(() => {});
    // After a capture at the edge has settled, so the tracker reads the cookies it set.
    return (boot = Promise.resolve(edge).then(() => import(url(__RUNTIME__))).then(
      (m) => m._boot(m, stub, o, hints),
      (e) => console.error(`${N}: could not load the tracker`, e),
    ));
  }

  // Is there work? Only these cheap checks run on a quiet page.
  let params = o.params || DEFAULT_PARAMS;
  for (const c of q) if (c[0] == 'init' && c[1] && c[1].params) params = c[1].params;
  const all = GROWI_PARAMS.concat(params);
  const search = all.some((p) => l.search.includes(p)) || l.search.includes('%') ? new URLSearchParams(l.search) : new Map();
  // The recognised parameters present, in priority order (what they are worth is the core's call).
  const found = all.filter((p, i) => search.has(p) && all.indexOf(p) == i);
  const need = [];
  if (found.length || q.some((c) => c[0] == 'ready')) need.push('visit');
  // GA4 capture (data-capture="ga4"; ga4.js in the tracker reads the events): a purchase in the
  // dataLayer is work, whether pushed before this ran or later. (`[1]`: gtag's arguments.)
  const dl = o.capture && (w.dataLayer = w.dataLayer || []);
  if (dl) {
    const bought = (x) => [].some.call(x, (e) => e && (e.event || e[1]) == 'purchase');
    const push = dl.push;
    dl.push = function () {
      bought(arguments) && start(['visit', 'order']);
      return push.apply(this, arguments);
    };
    bought(dl) && need.push('visit', 'order');
  }
  // The proxy is on this origin and may be told at once (consent not withheld, no Global Privacy
  // Control): the two edge paths below. Either hands the proxy what the page gave, as given; the
  // proxy applies the core's rules natively. Whatever is not plainly taken goes the tracker's way.
  const e = o.endpoint;
  const near = () => e[0] == '/' && e[1] != '/' && (o.consent || 'granted') == 'granted' && !(o.respectGpc != false && navigator.globalPrivacyControl);

  // A sale at the edge (sale.js): on a page with no capture to make and no options set in
  // script, a sale whose visitor came from a creator (the `sb_aff` cookie is there; whether it
  // is still worth anything is the proxy's call) goes to the proxy as the page handed it, and no
  // tracker is downloaded. Most purchases come from no creator: those, and whatever the proxy
  // does not plainly take, go to the tracker (`hand`). The cookie is asked for asynchronously
  // where the browser can (Cookie Store API): `document.cookie` is a synchronous call to the
  // browser process, the dearest thing such a page would do (1-4 ms, measured in a trace).
  const edgeable = () => !boot && near() && !found.length && !dl && q.every((c) => c[0] == 'sale' || (c[0] == 'init' && !c[1]));
  const hand = (c) => (w[N].loaded ? w[N].apply(0, c) : (q.push(c), start(['order'])));
  const sell = (c) =>
    new Promise((r) => r(w.cookieStore ? cookieStore.get(AFF_COOKIE) : RegExp(`(^|; )${AFF_COOKIE}=`).test(d.cookie)))
      .catch(() => 0)
      .then((y) => (y && edgeable() ? import(url(__SALE__)).then((m) => m.sell(c, e, hand), () => hand(c)) : hand(c)));
  if (noCode()) need.push('order');
  else if (q.some((c) => c[0] == 'sale')) edgeable() ? q.splice(0).map((c) => c[0] == 'sale' && sell(c)) : need.push('order');

  // Capture at the edge: a landing page with nothing else to do hands the creator's parameters
  // (and the data-* options as written) to the proxy, which applies the core's rules and sets
  // the cookies (POST /touch, proxy/src/http/edge.rs): no tracker is downloaded. Anything else
  // (a queued command, cleanUrl, an answer that is not a capture) goes the tracker's way, which
  // captures in the WebAssembly. (`need == 'visit'`: the list is exactly ['visit'].)
  edge =
    need == 'visit' && !q.length && !o.cleanUrl && near() &&
    fetch(e + '/touch', {
      method: 'POST',
      body: JSON.stringify({ url_params: found.map((p) => [p, search.get(p)]), model: o.model, window_days: a('window-days'), domain: o.cookieDomain }),
      keepalive: true,
    })
      .then((r) => r.json())
      .then((r) => {
        for (const m of r.warnings) console.warn(`${N}: ${m}`);
      })
      .catch(() => void start(['visit']));
  if (!edge && (need.length || q.some((c) => c[0] != 'init'))) return void start(need);
  // Quiet so far: the first command that needs the tracker loads it; so does a no-code sale
  // printed later in the page.
  w[N] = function () {
    const x = arguments;
    if (x[0] == 'init') return q.push(x), Promise.resolve();
    if (x[0] == 'sale' && edgeable()) return sell(x);
    q.push(x);
    const p = start(x[0] == 'sale' ? ['order'] : x[0] == 'ready' ? ['visit'] : []);
    p.catch(() => {});
    return p;
  };
  w[N].q = q;
  d.addEventListener('DOMContentLoaded', () => noCode() && start(['order']));
  // A sale an earlier page left waiting (mark.js). A proxy on this page's origin knows already,
  // from the mark's cookie on this file's request, and serves this file built to say so
  // (proxy/src/http/files.rs): __WAITS__ is then true (start the tracker) or false (nothing to
  // check). Anywhere else it is null and the loader asks: IndexedDB's database names answer
  // without a synchronous call to the browser; the localStorage key where IndexedDB cannot.
  if (__WAITS__) start([]);
  else if (__WAITS__ == null)
    new Promise((r) => r(indexedDB.databases()))
      .then((l) => l.some((x) => x.name == mark), () => localStorage.getItem(mark))
      .then((w) => w && start([]), () => {});
})(window, document);
