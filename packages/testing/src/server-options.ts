/** What the local cluster's postgres command line depends on. */
export interface ServerOptionsInput {
  port: number;
  /** Directory for the Unix socket; private to the cluster so clusters never share a lock file. */
  socketDir: string;
  /** Whether this build has the `output_plugin_libraries` GUC (unknown settings make postgres refuse to start). */
  hasOutputPluginLibraries: boolean;
  /** Whether wal2json.so is installed next to the server. */
  wal2json: boolean;
}

/** The settings a throwaway cluster runs with: logical decoding on, fsync off for speed. */
export function serverSettings(input: ServerOptionsInput): Array<[name: string, value: string]> {
  const settings: Array<[string, string]> = [
    ['wal_level', 'logical'],
    ['fsync', 'off'],
    // Kept on: decoding only sees flushed WAL, so async commit delays changes up to ~600 ms and loses them on a kill.
    ['synchronous_commit', 'on'],
    ['full_page_writes', 'off'],
    ['max_wal_senders', '64'],
    ['max_replication_slots', '64'],
    ['max_connections', '300'],
    ['unix_socket_directories', input.socketDir],
    ['listen_addresses', '127.0.0.1'],
  ];
  if (input.hasOutputPluginLibraries && input.wal2json) {
    settings.push(['output_plugin_libraries', 'pgoutput,test_decoding,wal2json']);
  }
  return settings;
}

/** The postgres argument list, e.g. `-c wal_level=logical ... -p 54321`. */
export function serverArgs(input: ServerOptionsInput): string[] {
  const args = serverSettings(input).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  args.push('-p', String(input.port));
  return args;
}

/** Quotes one word for /bin/sh, which is how pg_ctl hands `-o` to postgres. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The single `-o` string pg_ctl expects. */
export function pgCtlServerOptions(args: readonly string[]): string {
  return args.map(shellQuote).join(' ');
}
