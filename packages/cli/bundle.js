// Bundles the compiled CLI (dist/run-cli.js, from `tsc -b`) and everything it imports into one file, dist/bundle.cjs,
// and writes V8's code cache of it beside it. dist/walflow.js, the `walflow` bin, the Docker image's entry point and
// what the tests and the bench run, loads the bundle from that cache (src/load-bundle.ts).
// Loading one file instead of ~800 modules (kysely alone 210) takes a start from ~0.5 s to ~0.3 s, compiling it from
// the cache to ~0.2 s (README, Performance, items 17 and 21).
import { chmodSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { BUNDLE_FILE, loadBundle } from './dist/load-bundle.js';

/**
 * On Node 20, import() in a script compiled from a code cache fails (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING) whatever
 * importModuleDynamically the script was given: Node finds the handler by the script's host-defined options, which
 * V8 11.3 does not restore on a script it deserializes. So the bundle leaves out the one module that calls import(),
 * the server's import-module.js, and requires dist/import-module.cjs instead, which Node's own loader compiles.
 */
const importThroughNode = {
  name: 'import-through-node',
  setup(build) {
    build.onResolve({ filter: /^\.\/import-module\.js$/ }, () => ({ path: './import-module.cjs', external: true }));
  },
};

/**
 * pg asks, as it loads, whether it runs on Cloudflare Workers by constructing a `Response`, and on Node 20 the first
 * `Response` loads undici, Node's fetch, which walflow only needs to call a webhook: about 35 ms of every command's
 * start here (README, Performance). The bundle answers for it, since walflow never runs on Workers, and the build
 * fails if pg no longer asks that way.
 */
const notOnCloudflareWorkers = {
  name: 'not-on-cloudflare-workers',
  setup(build) {
    build.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const answered = source.replace('function isCloudflareRuntime() {', 'function isCloudflareRuntime() {\n  return false;');
      if (answered === source) throw new Error(`${args.path} no longer defines isCloudflareRuntime(): see whether the bundle still needs to answer it`);
      return { contents: answered, loader: 'js' };
    });
  },
};

await build({
  entryPoints: [fileURLToPath(new URL('./dist/run-cli.js', import.meta.url))],
  outfile: BUNDLE_FILE,
  bundle: true,
  platform: 'node',
  // A script, not an ES module: Node 20 compiles only scripts (vm.Script) from a code cache.
  format: 'cjs',
  target: 'node20',
  // Only loaded by pg when asked for its native bindings, which walflow never is.
  external: ['pg-native'],
  plugins: [importThroughNode, notOnCloudflareWorkers],
  // migrate.ts finds db/migrations from import.meta.url, which a script lacks: the bundle's own URL, as before.
  define: { 'import.meta.url': 'walflowBundleUrl' },
  // 'use strict' before the banner's statement: esbuild's own, after it, would not apply, and ES modules are strict.
  banner: { js: "'use strict'; const walflowBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});

// A code cache holds the functions V8 has compiled when it is made. Running the bundle's top level (it defines and
// imports; nothing connects, listens or prints) compiles everything every command runs before it parses its arguments.
loadBundle(BUNDLE_FILE, { useCodeCache: false }).writeCodeCache();

// The bin, executable as it was when esbuild wrote it: tsc writes dist/walflow.js without the mode.
chmodSync(fileURLToPath(new URL('./dist/walflow.js', import.meta.url)), 0o755);
