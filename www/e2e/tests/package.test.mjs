// The npm package as a TypeScript project and a package manager see it (no browser).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { PKG, requirePkg } from '../harness.mjs';

const require = createRequire(import.meta.url);

test('package.json: exports with types first, every listed file is in pkg/', () => {
  requirePkg();
  const pj = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
  assert.equal(pj.name, 'salebeacon');
  assert.equal(pj.type, 'module');
  assert.equal(pj.sideEffects, false);
  assert.deepEqual(Object.keys(pj.exports['.']), ['types', 'default']);
  const names = fs.readdirSync(PKG);
  for (const f of pj.files) {
    assert.ok(!f.includes('*'), `${f}: the package lists its files one by one`);
    assert.ok(fs.existsSync(path.join(PKG, f)), `${f} is in pkg/`);
  }
  // The npm package ships each module once: not the content-hashed copies the proxy serves.
  assert.ok(!pj.files.some((f) => /\.[0-9a-f]{10}\./.test(f)));
  for (const target of Object.values(pj.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e)))) {
    assert.ok(fs.existsSync(path.join(PKG, target)), `${target} exists`);
  }
});

const CONSUMER = `
import {
  init, trackSale, consent, attribution, visitorId, toMinorUnits, load, isSaleBeaconError,
  type SaleInput, type InitOptions, type TrackResult, type TrackStatus, type ConsentState,
  type AttributionInfo, type SaleBeaconIssue, type SaleBeaconError,
} from 'salebeacon';

const options: InitOptions = {
  endpoint: '/salebeacon', params: ['ref', 'aff'], model: 'first_click', windowDays: 30,
  cookieDomain: 'auto', consent: 'pending', respectGpc: true, cleanUrl: true, capture: ['ga4'],
};
await init(options);
await init();
const sale: SaleInput = { order_id: 'ORD-1', total: toMinorUnits('129.99', 'usd'), currency: 'usd', customer_email: 'a@example.com' };
const result: TrackResult = await trackSale(sale);
const status: TrackStatus = result.status;
const state: ConsentState = 'granted';
await consent(state);
const a: AttributionInfo | null = attribution();
const tag: string | undefined = a?.campaign_affiliate_id;
const vid: string | null = visitorId();
try {
  await trackSale({ order_id: 2, subtotal: 100, currency: 'eur', sale_type: 'subscription' });
} catch (e) {
  if (isSaleBeaconError(e)) {
    const code: SaleBeaconError['code'] = e.code;
    const issues: SaleBeaconIssue[] = e.issues;
    const message: string = e.message;
    console.log(code, issues, message);
  }
}
await load({ order: new URL('https://cdn.example.com/salebeacon_order_bg.wasm') });
// @ts-expect-error currency is required
await trackSale({ order_id: 'x', total: 1 });
// @ts-expect-error not a status
const lost: TrackStatus = 'lost';
// @ts-expect-error a typo in an option name
await init({ windowdays: 3 });
// @ts-expect-error consent takes a state
await consent(true);
console.log(status, tag, vid, lost);
export {};
`;

test('TypeScript: a consumer type-checks against index.d.ts through the exports map', () => {
  requirePkg();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salebeacon-ts-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'salebeacon'), 'dir');
    fs.writeFileSync(path.join(dir, 'consumer.ts'), CONSUMER);
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true, noEmit: true, target: 'es2022', module: 'esnext', moduleResolution: 'bundler',
          lib: ['es2022', 'dom'], types: [], skipLibCheck: false, noUnusedLocals: false,
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = require.resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
