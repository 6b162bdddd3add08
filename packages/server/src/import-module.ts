/**
 * import() of a module named at run time (the event catalog), in a module of its own: the CLI's bundle puts its
 * own in its place, because an import() compiled from the bundle's code cache cannot work on Node 20 (see
 * packages/cli/bundle.js).
 */
export async function importModule(url: string): Promise<Record<string, unknown>> {
  return (await import(url)) as Record<string, unknown>;
}
