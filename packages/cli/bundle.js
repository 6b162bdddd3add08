// Bundles the compiled CLI (dist/main.js, from `tsc -b`) and everything it imports into one file,
// dist/walflow.js: the `walflow` bin, the Docker image's entry point and what the tests and the bench run.
// Loading one file instead of ~800 modules (kysely alone 210) takes a start from ~0.5 s to ~0.2 s.
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

await build({
  entryPoints: [fileURLToPath(new URL('./dist/main.js', import.meta.url))],
  outfile: fileURLToPath(new URL('./dist/walflow.js', import.meta.url)),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Only loaded by pg when asked for its native bindings, which walflow never is.
  external: ['pg-native'],
  // CommonJS dependencies (pg, pino) call require() for Node's built-in modules; an ES module has none of its own.
  banner: { js: "import { createRequire as walflowCreateRequire } from 'node:module'; const require = walflowCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
