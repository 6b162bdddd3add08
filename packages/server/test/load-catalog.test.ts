import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineCatalog, defineEvent } from '@walflow/core';
import { loadCatalog } from '@walflow/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'walflow-catalog-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function catalogModule(name: string, text: string): Promise<string> {
  const file = join(directory, name);
  await writeFile(file, text);
  return file;
}

describe('loadCatalog', () => {
  it('names the module when the module itself fails, with its own message', async () => {
    const failing = await catalogModule('failing.mjs', "throw new Error('event type policy.approved is defined twice');\n");
    await expect(loadCatalog(failing)).rejects.toMatchObject({
      code: 'catalog_invalid',
      message: `cannot load the event catalog module ${failing}: event type policy.approved is defined twice`,
    });
  });

  it('takes the catalog of a CommonJS build of `export default`, handed over as default.default', async () => {
    const shared = globalThis as { walflowTestCatalog?: unknown };
    shared.walflowTestCatalog = defineCatalog(defineEvent('policy.approved', z.object({ policyId: z.string() })));
    try {
      // What TypeScript makes of `export default catalog` when it compiles to CommonJS.
      const built = await catalogModule('built.cjs', '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.default = globalThis.walflowTestCatalog;\n');
      const catalog = await loadCatalog(built);
      expect(catalog.has('policy.approved')).toBe(true);
    } finally {
      delete shared.walflowTestCatalog;
    }
  });
});
