import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/** The CLI and everything it imports in one CommonJS file, written by packages/cli/bundle.js from run-cli.js. */
export const BUNDLE_FILE = fileURLToPath(new URL('./bundle.cjs', import.meta.url));

/**
 * V8's code cache of a bundle, which bundle.js writes when it bundles. It lies next to the bundle, where only
 * whoever may replace the bundle may replace it: the cache is code as much as the bundle is. V8 checks it against
 * the length of the source only, so whoever edits a bundle by hand deletes its cache.
 */
export function codeCacheFile(bundleFile: string): string {
  return `${bundleFile}.code-cache`;
}

/** The bundle's code cache, or undefined if it has none (or it cannot be read): the bundle then compiles without. */
export function readCodeCache(bundleFile: string): Buffer | undefined {
  try {
    return readFileSync(codeCacheFile(bundleFile));
  } catch {
    return undefined;
  }
}

/** Whether V8 compiled the bundle from the code cache it was given. */
export type CodeCacheUse = 'accepted' | 'rejected' | 'none given';

export interface LoadedBundle {
  /** The bundle's module.exports. */
  exports: unknown;
  /** The compiled bundle, which bundle.js asks for a code cache once the bundle has run. */
  script: Script;
  codeCache: CodeCacheUse;
}

type CommonJsWrapper = (exports: unknown, require: NodeJS.Require, module: { exports: unknown }, filename: string, dirname: string) => void;

/**
 * Compiles and runs a CommonJS bundle as Node's own loader would, but through vm.Script, which takes a V8 code
 * cache: compiling the 3.6 MB bundle is most of a start, and Node 20 has no compile cache of its own
 * (module.enableCompileCache is Node 22). A cache V8 refuses (made by another Node, under other V8 flags, for
 * another source) only costs the time it would have saved: V8 then compiles the source.
 */
export function loadBundle(bundleFile: string, cachedData: Buffer | undefined): LoadedBundle {
  // Node's CommonJS wrapper, opened on the first line so that stack traces give the file's own line numbers.
  const source = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundleFile, 'utf8')}\n})`;
  // No importModuleDynamically: on Node 20 an import() compiled from a code cache fails whatever it says, so the
  // bundle has none (see bundle.js).
  const script = new Script(source, { filename: bundleFile, cachedData });
  const module = { exports: {} as unknown };
  const wrapper = script.runInThisContext() as CommonJsWrapper;
  wrapper.call(module.exports, module.exports, createRequire(bundleFile), module, bundleFile, dirname(bundleFile));
  return { exports: module.exports, script, codeCache: codeCacheUse(script, cachedData) };
}

function codeCacheUse(script: Script, cachedData: Buffer | undefined): CodeCacheUse {
  if (cachedData === undefined) return 'none given';
  return script.cachedDataRejected === true ? 'rejected' : 'accepted';
}
