// Runs the e2e suite once per engine (`npm test` with SALEBEACON_ENGINE set), one after the other,
// and prints one summary row per engine. `node all-engines.mjs [chromium|firefox|webkit ...]`
// (default: all three); `npm run test:all`. Exits non-zero when an engine has a failing test or
// ran none. `cargo xtask test e2e` runs the same loop itself (one summary row per engine).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ENGINES } from './engines.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const engines = process.argv.slice(2).length ? process.argv.slice(2) : ENGINES;
for (const e of engines) {
  if (!ENGINES.includes(e)) {
    console.error(`unknown engine ${JSON.stringify(e)}: one of ${ENGINES.join(', ')}`);
    process.exit(2);
  }
}

/** `# pass N` / `# fail N` of node's TAP reporter (`ℹ pass N` of the spec one). */
function counts(output) {
  const n = (word) => {
    const m = [...output.matchAll(new RegExp(`^(?:#|ℹ) ${word} (\\d+)$`, 'gm'))].pop();
    return m ? Number(m[1]) : 0;
  };
  return { pass: n('pass'), fail: n('fail') + n('cancelled') };
}

let child = null;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    // The suite's own handlers stop the browsers and servers; wait for it to exit.
    if (child) child.kill(sig);
    else process.exit(130);
  });
}

const rows = [];
for (const engine of engines) {
  const started = Date.now();
  let output = '';
  const code = await new Promise((resolve) => {
    child = spawn(
      process.execPath,
      ['--test', '--test-concurrency=1', '--test-timeout=180000', '--test-reporter=tap', 'tests/'],
      { cwd: here, env: { ...process.env, SALEBEACON_ENGINE: engine }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    child.stdout.on('data', (chunk) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1)));
  });
  child = null;
  const { pass, fail } = counts(output);
  rows.push({ engine, pass, fail, seconds: (Date.now() - started) / 1000, ok: code === 0 && fail === 0 && pass > 0 });
}

console.log('\nengine     passed  failed  seconds  status');
for (const r of rows) {
  console.log(
    `${`e2e ${r.engine}`.padEnd(14)}${String(r.pass).padStart(3)}${String(r.fail).padStart(8)}${r.seconds.toFixed(1).padStart(9)}  ${r.ok ? 'ok' : 'FAILED'}`,
  );
}
process.exit(rows.every((r) => r.ok) ? 0 : 1);
