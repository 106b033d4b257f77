import http from 'node:http';
import { launchEngine } from './engines.mjs';
const seen = [];
const server = http.createServer((req, res) => {
  seen.push(`${req.method} ${req.headers.host}${req.url}`);
  res.writeHead(200, {'content-type':'text/html', 'access-control-allow-origin': '*'}); res.end(`<p>hi</p>`);
});
await new Promise(r => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const which = process.argv[2];
const engine = await launchEngine(which);
try {
  const ctx = await engine.newContext();
  const p = await ctx.newPage();
  await p.goto(`http://shop.test:${port}/host`);
  const r = await p.evaluate(async (port) => {
    const out = {};
    for (const h of ['127.0.0.1', 'localhost']) {
      out['fetch-' + h] = await fetch(`http://${h}:${port}/fetch-${h}`).then(r => r.status, e => 'error ' + e.message);
      out['beacon-' + h] = navigator.sendBeacon(`http://${h}:${port}/beacon-${h}`, 'x');
      out['img-' + h] = await new Promise(res => { const i = new Image(); i.onload = () => res('load'); i.onerror = () => res('error'); i.src = `http://${h}:${port}/img-${h}`; });
    }
    return out;
  }, port);
  await new Promise(r => setTimeout(r, 1000));
  console.log(which, JSON.stringify(r), seen.filter(s => !s.includes('shop.test')));
} finally { await engine.close(); server.close(); }
