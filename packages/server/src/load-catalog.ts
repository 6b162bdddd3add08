import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isEventCatalog, WalflowError, type EventCatalog } from '@walflow/core';
import { importModule } from './import-module.js';

/**
 * Imports the module named by WALFLOW_CATALOG and returns its `catalog` (or default) export; a CommonJS build of
 * `export default` hands it over as `default.default`.
 */
export async function loadCatalog(modulePath: string): Promise<EventCatalog> {
  let loaded: Record<string, unknown>;
  try {
    loaded = await importModule(pathToFileURL(resolve(modulePath)).href);
  } catch (error) {
    // Always naming the module: the catalog's own error (an event type defined twice, say) does not.
    const details = error instanceof WalflowError ? error.details : undefined;
    throw new WalflowError('catalog_invalid', `cannot load the event catalog module ${modulePath}: ${error instanceof Error ? error.message : String(error)}`, { cause: error, details });
  }
  const exported = loaded.catalog ?? loaded.default;
  const catalog = isEventCatalog(exported) ? exported : (exported as { default?: unknown } | undefined)?.default;
  if (!isEventCatalog(catalog)) {
    throw new WalflowError('catalog_invalid', `${modulePath} must export a catalog made with defineCatalog(), as \`catalog\` or as default`);
  }
  return catalog;
}
