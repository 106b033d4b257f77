// Builds www/demo-npm (a Vite 7 project importing the salebeacon package) into www/demo/npm/.
// Needs pkg/ (cargo xtask build). Usable as a module (`buildDemo()`) or a script.
import { build } from 'vite';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
export const demoNpmDir = resolve(here, '../demo-npm');

export async function buildDemo() {
  await build({ root: demoNpmDir, configFile: resolve(demoNpmDir, 'vite.config.js') });
  return resolve(here, '../demo/npm');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildDemo();
  console.log(`built ${out}`);
}
