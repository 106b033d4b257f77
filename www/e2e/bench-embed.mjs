// Measures the script-tag embed against DESIGN.md's budgets (not a test):
//  1. bytes a landing page downloads for the embed: salebeacon.js + index.js + salebeacon_wasm.js (glue)
//     + salebeacon_wasm_bg.wasm, raw / gzip -9 / brotli q11;
//  2. main-thread time of loader + init in Chromium: CDP Performance.getMetrics (ScriptDuration,
//     TaskDuration) of a page with the embed minus the same page without it, and the loader's own
//     performance.measure('salebeacon:init') (loader start → init resolved, wall clock: includes
//     the downloads and the off-thread wasm compile). Median of N fresh browser contexts.
// Needs pkg/ (cargo xtask build) and the release binaries the e2e suite runs (the pages are served
// by salebeacon-testserver in front of the real proxy, without the tests' instrumentation script).
// Chromium only (CDP), through playwright-core directly. Usage: node bench-embed.mjs [--runs 15] [--cpu 4]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';
import { PKG, requirePkg, startStack, stopStack } from './harness.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const RUNS = arg('--runs', 15);
const CPU = arg('--cpu', 4);
const BUDGET_BYTES = 20 * 1024;
const BUDGET_MS = 5;

requirePkg();
const kb = (n) => n.toLocaleString('en-US');

// 1. bytes
const files = ['salebeacon.js', 'index.js', 'salebeacon_wasm.js', 'salebeacon_wasm_bg.wasm'];
const rows = files.map((f) => {
  const b = fs.readFileSync(path.join(PKG, f));
  return {
    f,
    raw: b.length,
    gz: zlib.gzipSync(b, { level: 9 }).length,
    br: zlib.brotliCompressSync(b, {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length },
    }).length,
  };
});
const total = rows.reduce((t, r) => ({ raw: t.raw + r.raw, gz: t.gz + r.gz, br: t.br + r.br }), { raw: 0, gz: 0, br: 0 });
console.log('\nembed download (bytes)');
console.log('file                        raw     gzip -9   brotli 11');
console.log('-------------------------------------------------------');
for (const r of [...rows, { f: 'total', ...total }]) {
  if (r.f === 'total') console.log('-------------------------------------------------------');
  console.log(`${r.f.padEnd(20)}${kb(r.raw).padStart(11)}${kb(r.gz).padStart(12)}${kb(r.br).padStart(12)}`);
}
console.log(`brotli total ${kb(total.br)} B of the ${kb(BUDGET_BYTES)} B budget: ${total.br <= BUDGET_BYTES ? 'within' : 'OVER'} budget`);

// 2. main-thread time
const site = fs.mkdtempSync(path.join(os.tmpdir(), 'salebeacon-bench-'));
const page = (embed) => `<!doctype html><html><head><meta charset="utf-8"><title>bench</title>
<script src="/stub.js"></script>
${embed ? '<script async src="/salebeacon/salebeacon.js" data-endpoint="/salebeacon"></script>' : ''}
<script src="/bench.js"></script></head><body><h1>Landing</h1><p>${'Lorem ipsum dolor sit amet. '.repeat(40)}</p></body></html>`;
fs.writeFileSync(path.join(site, 'embed.html'), page(true));
fs.writeFileSync(path.join(site, 'baseline.html'), page(false));
fs.writeFileSync(
  path.join(site, 'stub.js'),
  'window.salebeacon=window.salebeacon||function(){(salebeacon.q=salebeacon.q||[]).push(arguments)};\n',
);
fs.writeFileSync(
  path.join(site, 'bench.js'),
  `salebeacon('ready', function () { window.__sbReady = performance.now(); });
addEventListener('load', function () { window.__loaded = performance.now(); });\n`,
);
// The pages as a shop serves them, the proxy (its files, /touch) behind the same origin.
const stack = await startStack({ siteDir: site, engine: false, inject: false });
const front = { url: stack.site };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});

async function once(which, cpu) {
  const context = await browser.newContext();
  const p = await context.newPage();
  const cdp = await context.newCDPSession(p);
  await cdp.send('Performance.enable');
  if (cpu > 1) await cdp.send('Emulation.setCPUThrottlingRate', { rate: cpu });
  await p.goto(`${front.url}/${which}.html?ref=creator42`);
  if (which === 'embed') await p.waitForFunction(() => window.__sbReady, null, { timeout: 15000 });
  else await p.waitForFunction(() => window.__loaded);
  // let the tracker's post-init work (the /touch request, the outbox flush) run too
  await p.evaluate(() => new Promise((r) => setTimeout(r, 300)));
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  const measure = await p.evaluate(() => performance.getEntriesByName('salebeacon:init')[0]?.duration ?? null);
  await context.close();
  return { script: m.ScriptDuration * 1000, task: m.TaskDuration * 1000, measure };
}

const median = (xs) => {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

async function series(cpu) {
  await once('embed', cpu); // warm-up (disk cache of the binary, JIT of the browser)
  const base = [];
  const embed = [];
  for (let i = 0; i < RUNS; i++) {
    base.push(await once('baseline', cpu));
    embed.push(await once('embed', cpu));
  }
  return {
    cpu,
    script: median(embed.map((e) => e.script)) - median(base.map((b) => b.script)),
    task: median(embed.map((e) => e.task)) - median(base.map((b) => b.task)),
    measure: median(embed.map((e) => e.measure)),
  };
}

const results = [await series(1)];
if (CPU > 1) results.push(await series(CPU));
await browser.close();
await stopStack(stack);
fs.rmSync(site, { recursive: true, force: true });

console.log(`\nmain thread, loader + init on a landing page (Chromium, median of ${RUNS}, embed minus baseline page)`);
console.log('CPU          script (ms)   all tasks (ms)   loader→init resolved (ms, wall)');
console.log('--------------------------------------------------------------------------');
for (const r of results) {
  console.log(
    `${(r.cpu === 1 ? 'unthrottled' : `${r.cpu}x slower`).padEnd(13)}${r.script.toFixed(2).padStart(11)}${r.task.toFixed(2).padStart(17)}${r.measure.toFixed(1).padStart(20)}`,
  );
}
const s = results[0].script;
console.log(`script time ${s.toFixed(2)} ms of the ${BUDGET_MS} ms budget (unthrottled): ${s <= BUDGET_MS ? 'within' : 'OVER'} budget`);
