import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { pathExists } from './path-exists.js';

const execFileAsync = promisify(execFile);

/** Where Debian and Ubuntu install one directory per server major version. */
const debianRoot = '/usr/lib/postgresql';

/** A PostgreSQL installation the helper can run: its programs and its loadable modules. */
export interface PostgresInstall {
  bindir: string;
  pkglibdir: string;
}

/** Directory names such as `15`, `16` or `9.6` ordered from the newest version down; other names are dropped. */
export function sortVersionDirs(names: readonly string[]): string[] {
  const parse = (name: string): number[] => name.split('.').map(Number);
  return names
    .filter((name) => /^\d+(\.\d+)*$/.test(name))
    .sort((a, b) => {
      const [left, right] = [parse(a), parse(b)];
      for (let i = 0; i < Math.max(left.length, right.length); i++) {
        const diff = (right[i] ?? 0) - (left[i] ?? 0);
        if (diff !== 0) return diff;
      }
      return 0;
    });
}


async function pgConfig(flag: string): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync('pg_config', [flag], { encoding: 'utf8' });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** `pg_config --bindir` when it has initdb, else the newest `/usr/lib/postgresql/<version>/bin` that does. */
export async function findPostgresInstall(): Promise<PostgresInstall | undefined> {
  const configured = await pgConfig('--bindir');
  if (configured !== undefined && (await pathExists(join(configured, 'initdb')))) {
    return { bindir: configured, pkglibdir: (await pgConfig('--pkglibdir')) ?? resolve(configured, '../lib') };
  }
  let names: string[];
  try {
    names = await readdir(debianRoot);
  } catch {
    return undefined;
  }
  for (const name of sortVersionDirs(names)) {
    const bindir = join(debianRoot, name, 'bin');
    if (await pathExists(join(bindir, 'initdb'))) return { bindir, pkglibdir: resolve(bindir, '../lib') };
  }
  return undefined;
}
