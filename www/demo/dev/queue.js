// Queue stub + commands issued before the loader has loaded (see queue.html).
window.salebeacon=window.salebeacon||function(){(salebeacon.q=salebeacon.q||[]).push(arguments)};

(function () {
  var ev = (window.__events = []);
  var q = new URLSearchParams(location.search);
  var cb = function (name) {
    return function (err, r) {
      ev.push(name + ':' + (err ? err.code || 'error' : r ? r.status : 'ok'));
    };
  };
  salebeacon('ready', function (sb) {
    var a = sb.attribution();
    ev.push('ready1:' + (a && a.campaign_affiliate_id) + ':' + (a && a.model));
  });
  // Merged over the tag's data-* options: data-params="src" would not see ?ref=.
  salebeacon('init', { params: ['ref'] });
  salebeacon('consent', 'pending');
  salebeacon('sale', { order_id: q.get('a'), total: 1000, currency: 'usd' }, cb('sale'));
  salebeacon('sale', { order_id: q.get('a') + '-bad', total: 'ten', currency: 'usd' }, cb('invalid'));
  salebeacon('ready', function (sb) {
    ev.push('ready2:' + typeof sb.trackSale);
  });
  salebeacon('consent', 'granted', cb('consent'));
  salebeacon('no-such-command', {}, cb('unknown'));

  // The no-code form, as a server-rendered thank-you page would print it.
  if (q.get('b')) {
    var el = document.createElement('script');
    el.type = 'application/json';
    el.setAttribute('data-salebeacon-sale', '');
    el.textContent = JSON.stringify({ order_id: q.get('b'), total: 2000, currency: 'usd' });
    document.head.appendChild(el);
  }
})();
