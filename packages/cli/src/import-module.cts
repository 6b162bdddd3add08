// What the bundle imports in place of the server's import-module.js (see bundle.js): Node's CommonJS loader compiles
// this file itself, so its import() works, where one compiled from the bundle's code cache would not.
async function importModule(url: string): Promise<Record<string, unknown>> {
  return (await import(url)) as Record<string, unknown>;
}

export = { importModule };
