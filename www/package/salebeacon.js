/*! salebeacon loader: data-* options, loads the tracker, replays salebeacon(...) calls */
(function (w, d) {
  var N = 'salebeacon', c = console, P = w.performance, stub = w[N];
  if (stub && stub.loaded) return;
  if (!stub) stub = w[N] = function () { (stub.q = stub.q || []).push(arguments); };
  P.mark && P.mark(N + ':loader');
  var s = d.currentScript || d.querySelector('script[src*="' + N + '"][src*="loader"]');
  var dir = new URL('.', s ? s.src : '/' + N + '/'), a = s ? s.dataset : {}, o = {}, api, ok;
  var bool = function (v) { return v != 'false' && v != '0'; };
  o.endpoint = a.endpoint || (dir.origin == location.origin ? dir.pathname : dir.href).replace(/\/$/, '');
  if (a.params) o.params = a.params.split(',').map(function (p) { return p.trim(); }).filter(String);
  if (a.windowDays) o.windowDays = +a.windowDays;
  ['model', 'cookieDomain', 'consent'].forEach(function (k) { if (a[k]) o[k] = a[k]; });
  ['respectGpc', 'cleanUrl'].forEach(function (k) { if (a[k] != null) o[k] = bool(a[k]); });

  function merge(x) { var r = {}, k; for (k in o) r[k] = o[k]; for (k in x) r[k] = x[k]; return r; }
  // Logs the outcome; calls cb(err, result). The returned promise still rejects for callers.
  function report(p, what, cb) {
    p.then(function (r) {
      what && c.info(N + ': ' + what + ': ' + r.status);
      cb && cb(null, r);
    }, function (e) {
      e && e.issues ? c.error(e.message, e.issues) : c.error(e);
      cb && cb(e);
    });
    return p;
  }
  // A SaleBeaconError, as the tracker's own (name, code, issues).
  function fail(code, field, message) {
    var e = Error(N + ': ' + message);
    e.name = 'SaleBeaconError';
    e.code = code;
    e.issues = [{ field: field, message: message }];
    return Promise.reject(e);
  }
  function run(cmd, x, cb) {
    var p = cmd == 'sale' ? api.trackSale(x)
      : cmd == 'consent' ? api.consent(x)
      : cmd == 'init' ? api.init(merge(x))
      : cmd == 'ready' ? (ok ? new Promise(function (r) { r(x(api)); }).then(function () { return api; })
        : fail('not_initialized', 'init', 'init failed; see the error above'))
      : fail('invalid_command', 'command', 'unknown command "' + cmd + '" (sale, consent, init, ready)');
    return report(p, cmd == 'sale' && 'order ' + (x && x.order_id), typeof cb == 'function' && cb);
  }
  // The page hears of a refusal through the console and the callback; the returned promise still
  // rejects for a caller that awaits it, but one nobody awaits must not surface as an unhandled
  // rejection (error monitors report those on every thank-you page).
  function handled(p) {
    p.catch(function () {});
    return p;
  }
  // The no-code form: <script type="application/json" data-salebeacon-sale>{...}</script>
  function scan() {
    [].forEach.call(d.querySelectorAll('script[type="application/json"][data-' + N + '-sale]'), function (el) {
      if (el._sb) return;
      el._sb = 1;
      try { var sale = JSON.parse(el.textContent); } catch (e) {
        return c.error(N + ': the data-' + N + '-sale JSON is not valid: ' + e.message);
      }
      w[N]('sale', sale);
    });
  }
  var entry = dir.href + 'index.js'; // the build points this at index.<hash>.js
  import(entry).then(function (m) {
    api = m;
    var q = [].slice.call(stub.q || []), opts = o, i;
    for (i = 0; i < q.length; i++) if (q[i][0] == 'init') opts = merge(q[i][1]);
    var boot = report(m.init(opts)).then(function () {
      ok = 1;
      P.measure && P.measure(N + ':init', N + ':loader');
    }, function () {});
    var disp = w[N] = function () {
      var x = arguments;
      return handled(boot.then(function () { return run(x[0], x[1], x[2]); }));
    };
    disp.q = [];
    disp.loaded = true;
    for (i = 0; i < q.length; i++) q[i][0] != 'init' && disp.apply(0, q[i]);
    d.readyState == 'loading' ? d.addEventListener('DOMContentLoaded', scan) : boot.then(scan);
  }, function (e) {
    c.error(N + ': could not load ' + entry, e);
  });
})(window, document);
