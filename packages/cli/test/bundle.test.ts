import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type * as LoadBundleModule from '../src/load-bundle.js';
import { CLI, runWalflow } from './walflow-process.js';

/** packages/cli/dist as `pnpm build` left it. */
const DIST = fileURLToPath(new URL('../dist/', import.meta.url));
/** What the bin loads: itself, the loader, the bundle and the module the bundle imports through. */
const BIN_FILES = ['walflow.js', 'load-bundle.js', 'bundle.cjs', 'import-module.cjs'];
const CACHE = 'bundle.cjs.code-cache';

const scratch = mkdtempSync(join(tmpdir(), 'walflow-bundle-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What V8 made of the code cache beside the bundle in `dir`, asked of a fresh node, as the bin runs. */
function codeCacheUse(dir: string): string {
  const loader = pathToFileURL(join(dir, 'load-bundle.js')).href;
  const script = `import { BUNDLE_FILE, loadBundle } from '${loader}';
process.stdout.write(loadBundle(BUNDLE_FILE, { useCodeCache: true }).codeCache);`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
}

function help(bin: string): { status: number | null; stdout: string; stderr: string } {
  const { status, stdout, stderr } = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  return { status, stdout, stderr };
}

describe('the walflow bin', () => {
  it('compiles the bundle from the code cache pnpm build wrote beside it', () => {
    expect(codeCacheUse(DIST)).toBe('accepted');
    // The bin itself: V8 says what it deserialized under --profile-deserialization, a flag it leaves out of the
    // flags a code cache must have been made with, so the cache stays acceptable.
    // The file holds the bundle's SHA-256 digest, then what V8 reads.
    const cacheBytes = statSync(join(DIST, CACHE)).size - 32;
    const { stdout } = spawnSync(process.execPath, ['--profile-deserialization', CLI, '--help'], { encoding: 'utf8' });
    expect(stdout).toContain(`[Deserializing from ${cacheBytes} bytes`);
  });

  it("loads without Node's fetch (undici), which pg's check for Cloudflare Workers would load at every start", () => {
    const loader = pathToFileURL(join(DIST, 'load-bundle.js')).href;
    const script = `import { BUNDLE_FILE, loadBundle } from '${loader}';
loadBundle(BUNDLE_FILE, { useCodeCache: true });
process.stdout.write(String(process.moduleLoadList.some((name) => name.includes('undici'))));`;
    expect(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })).toBe('false');
  });

  it('compiles the bundle from its source, saying nothing, when the cache is missing or V8 refuses it', () => {
    const copy = join(scratch, 'dist');
    mkdirSync(copy);
    for (const file of BIN_FILES) copyFileSync(join(DIST, file), join(copy, file));
    writeFileSync(join(copy, 'package.json'), JSON.stringify({ type: 'module' }));
    const expected = help(CLI);

    expect(codeCacheUse(copy)).toBe('none');
    expect(help(join(copy, 'walflow.js'))).toEqual(expected);

    // The digest of this very bundle, then bytes V8 cannot read.
    const cache = readFileSync(join(DIST, CACHE));
    writeFileSync(join(copy, CACHE), Buffer.concat([cache.subarray(0, 32), Buffer.alloc(cache.length - 32)]));
    expect(codeCacheUse(copy)).toBe('rejected');
    expect(help(join(copy, 'walflow.js'))).toEqual(expected);
    expect(expected).toMatchObject({ status: 0, stderr: '' });
  });

  it('runs a bundle edited since its cache was made as it now reads, even when the edit keeps its length', async () => {
    // V8 compares a cache with the length of its source only: without the digest, this would answer 41.
    const { loadBundle } = (await import(pathToFileURL(join(DIST, 'load-bundle.js')).href)) as typeof LoadBundleModule;
    const bundle = join(scratch, 'edited.cjs');
    writeFileSync(bundle, 'module.exports = { answer: 41 };\n');
    loadBundle(bundle, { useCodeCache: false }).writeCodeCache();
    expect(loadBundle(bundle, { useCodeCache: true })).toMatchObject({ codeCache: 'accepted', exports: { answer: 41 } });
    writeFileSync(bundle, 'module.exports = { answer: 42 };\n');
    expect(loadBundle(bundle, { useCodeCache: true })).toMatchObject({ codeCache: 'stale', exports: { answer: 42 } });
  });

  it("imports the catalog module through Node's loader, as the bundle's own import() could not", async () => {
    const catalogModule = join(scratch, 'not-a-catalog.mjs');
    writeFileSync(catalogModule, 'export const catalog = 42;\n');
    // repair loads the catalog before it connects: that it was imported shows in what it says of the export.
    const { code, output } = await runWalflow(['repair'], { DATABASE_URL: 'postgres://127.0.0.1:1/none', WALFLOW_CATALOG: catalogModule });
    expect(output).toContain(`walflow: ${catalogModule} must export a catalog made with defineCatalog()`);
    expect(code).toBe(1);
  });
});
