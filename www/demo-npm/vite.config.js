// Vite 7, no plugins: the package's `new URL('./salebeacon_wasm_bg.wasm', import.meta.url)` is enough
// for Vite to emit the .wasm as an asset. `salebeacon` resolves to the built package (pkg/, or
// $SALEBEACON_PKG) as a real shop's node_modules/salebeacon would.
// (No `import from 'vite'`, so www/e2e can build this folder with its own Vite.)
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
const pkg = process.env.SALEBEACON_PKG || resolve(here, '../../pkg');

export default {
  root: here,
  base: '/npm/',
  logLevel: 'warn',
  resolve: { alias: [{ find: /^salebeacon$/, replacement: pkg }] },
  build: {
    outDir: resolve(here, '../demo/npm'),
    emptyOutDir: true,
    rollupOptions: {
      input: { 'thanks-npm': resolve(here, 'src/thanks-npm.js') },
      output: {
        entryFileNames: '[name].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
};
