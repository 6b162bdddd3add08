import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/** The CLI and everything it imports in one CommonJS file, written by packages/cli/bundle.js from run-cli.js. */
export const BUNDLE_FILE = fileURLToPath(new URL('./bundle.cjs', import.meta.url));

/** A SHA-256 digest's length: the code cache file starts with the digest of the source it was made from. */
const DIGEST_BYTES = 32;

/**
 * V8's code cache of a bundle, which bundle.js writes when it bundles. It lies next to the bundle, where only
 * whoever may replace the bundle may replace it: the cache is code as much as the bundle is.
 */
function codeCacheFile(bundleFile: string): string {
  return `${bundleFile}.code-cache`;
}

/**
 * Whether V8 compiled the bundle from its code cache: `stale` is a cache made from another source (V8 itself
 * compares only the source's length, and would run the old code for an edit that keeps it).
 */
export type CodeCacheUse = 'accepted' | 'rejected' | 'stale' | 'none';

export interface LoadedBundle {
  /** The bundle's module.exports. */
  exports: unknown;
  codeCache: CodeCacheUse;
  /** Writes the code cache of the bundle as it has been compiled so far (bundle.js, once the top level ran). */
  writeCodeCache(): void;
}

type CommonJsWrapper = (exports: unknown, require: NodeJS.Require, module: { exports: unknown }, filename: string, dirname: string) => void;

/**
 * Compiles and runs a CommonJS bundle as Node's own loader would, but through vm.Script, which takes a V8 code
 * cache: compiling the 3.6 MB bundle is most of a start, and Node 20 has no compile cache of its own
 * (module.enableCompileCache is Node 22). A cache that is missing, made from another source, or that V8 refuses
 * (made by another Node, under other V8 flags) only costs the time it would have saved: V8 compiles the source.
 */
export function loadBundle(bundleFile: string, { useCodeCache }: { useCodeCache: boolean }): LoadedBundle {
  const sourceBytes = readFileSync(bundleFile);
  const digest = createHash('sha256').update(sourceBytes).digest();
  const stored = useCodeCache ? readCodeCache(bundleFile) : undefined;
  const matches = stored !== undefined && digest.equals(stored.subarray(0, DIGEST_BYTES));
  const cachedData = matches ? stored.subarray(DIGEST_BYTES) : undefined;
  // Node's CommonJS wrapper, opened on the first line so that stack traces give the file's own line numbers.
  const source = `(function (exports, require, module, __filename, __dirname) {${sourceBytes.toString('utf8')}\n})`;
  // No importModuleDynamically: on Node 20 an import() compiled from a code cache fails whatever it says, so the
  // bundle has none (see bundle.js).
  const script = new Script(source, { filename: bundleFile, cachedData });
  const module = { exports: {} as unknown };
  const wrapper = script.runInThisContext() as CommonJsWrapper;
  wrapper.call(module.exports, module.exports, createRequire(bundleFile), module, bundleFile, dirname(bundleFile));
  return {
    exports: module.exports,
    codeCache: stored === undefined ? 'none' : !matches ? 'stale' : script.cachedDataRejected === true ? 'rejected' : 'accepted',
    writeCodeCache: () => writeFileSync(codeCacheFile(bundleFile), Buffer.concat([digest, script.createCachedData()])),
  };
}

/** The code cache beside the bundle, or undefined if it has none (or it cannot be read). */
function readCodeCache(bundleFile: string): Buffer | undefined {
  try {
    return readFileSync(codeCacheFile(bundleFile));
  } catch {
    return undefined;
  }
}
