// The shipped WebAssembly modules (built with the `embed` feature: no std, the arena allocator),
// driven through their own wasm-bindgen glue in Node, as the tracker drives them in a page: a
// page can live for hours and validate thousands of sales, so the module's memory must not grow
// with the number of calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../harness.mjs';

const STAGE = path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'js-build');

async function module(name) {
  const glue = path.join(STAGE, `salebeacon_${name}.js`);
  if (!fs.existsSync(glue)) throw new Error(`${glue} is missing: run \`cargo xtask build\``);
  const g = await import(glue);
  const wasm = await g.default({ module_or_path: fs.readFileSync(path.join(STAGE, `salebeacon_${name}_bg.wasm`)) });
  return { g, pages: () => wasm.memory.buffer.byteLength / 65536 };
}

test('the order module validates 50,000 sales in constant memory', async () => {
  const { g, pages } = await module('order');
  const aff = `1~l~${Date.now()}~t~creator42`;
  // One large sale first: the arena grows to hold it once.
  g.put('customer_name', 3, 'é'.repeat(100000), 0);
  g.put('order_id', 3, 'BIG', 0);
  assert.match(g.sale(aff, '', 30, Date.now()), /customer_name/);
  const after = pages();
  for (let i = 0; i < 50000; i++) {
    g.put('order_id', 3, `ORD-${i}`, 0);
    g.put('total', 2, '', 100 + i);
    g.put('currency', 3, 'usd', 0);
    const r = JSON.parse(g.sale(aff, '', 30, Date.now()));
    if (r.order_id !== `ORD-${i}`) assert.fail(JSON.stringify(r));
  }
  assert.equal(pages(), after, 'the memory did not grow');
});

test('the visit module captures 50,000 times in constant memory', async () => {
  const { g, pages } = await module('visit');
  g.put('ref', 3, 'creator42', 0);
  g.capture('', 'last_click', 30, Date.now());
  const after = pages();
  for (let i = 0; i < 50000; i++) {
    g.put('ref', 3, `c${i}`, 0);
    const r = JSON.parse(g.capture('', 'last_click', 30, Date.now()));
    if (!r.aff.endsWith(`~t~c${i}`)) assert.fail(JSON.stringify(r));
    g.minorUnits('19.99', 'usd');
  }
  assert.equal(pages(), after, 'the memory did not grow');
});
