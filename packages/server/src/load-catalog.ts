import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isEventCatalog, WalflowError, type EventCatalog } from '@walflow/core';
import { importModule } from './import-module.js';

/** Imports the module named by WALFLOW_CATALOG and returns its `catalog` (or default) export. */
export async function loadCatalog(modulePath: string): Promise<EventCatalog> {
  let loaded: Record<string, unknown>;
  try {
    loaded = await importModule(pathToFileURL(resolve(modulePath)).href);
  } catch (error) {
    throw WalflowError.from(error, 'catalog_invalid', `cannot load the event catalog module ${modulePath}`);
  }
  const catalog = loaded.catalog ?? loaded.default;
  if (!isEventCatalog(catalog)) {
    throw new WalflowError('catalog_invalid', `${modulePath} must export a catalog made with defineCatalog(), as \`catalog\` or as default`);
  }
  return catalog;
}
