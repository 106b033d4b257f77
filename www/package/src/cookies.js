// First-party cookies: `sb_aff` (the attribution, the core's encoded form) and `sb_vid` (the
// visitor uid), names from the core (contract.js).
//
// `cookieDomain: "auto"` finds the widest domain the browser lets us set, by trying: from the
// registrable-looking suffix (`example.com`, or `example.co.uk` after the browser refuses `co.uk`)
// towards the full host name, the first domain at which a probe cookie sticks wins. That is how
// `shop.example.com` and `checkout.example.com` share attribution without a public-suffix list.
// IP addresses and single-label hosts (`localhost`) get host-only cookies.
export function getCookie(name, jar = document.cookie) {
  for (const pair of jar.split(';')) {
    const i = pair.indexOf('=');
    if (i > 0 && pair.slice(0, i).trim() === name) {
      const v = pair.slice(i + 1).trim();
      return v.length > 1 && v[0] === '"' && v[v.length - 1] === '"' ? v.slice(1, -1) : v;
    }
  }
  return null;
}

export function setCookie(name, value, maxAgeSecs, domain) {
  document.cookie =
    `${name}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSecs))}; SameSite=Lax` +
    (domain ? `; Domain=${domain}` : '') +
    (location.protocol === 'https:' ? '; Secure' : '');
}

export function autoDomain() {
  const host = location.hostname;
  if (!host.includes('.') || host.includes(':') || /^[\d.]+$/.test(host)) return null;
  const labels = host.split('.');
  for (let n = 2; n <= labels.length; n++) {
    const d = labels.slice(-n).join('.');
    setCookie('sb_probe', '1', 10, d);
    if (getCookie('sb_probe')) {
      setCookie('sb_probe', '', 0, d);
      return d;
    }
  }
  return null;
}
