import { describe, expect, it } from 'vitest';
import { pgCtlServerOptions, serverArgs, serverSettings, shellQuote } from './server-options.js';

const base = { port: 54321, socketDir: '/tmp/walflow-pg-abc', hasOutputPluginLibraries: false, wal2json: true };

describe('serverSettings', () => {
  it('enables logical decoding and turns durability off', () => {
    const settings = new Map(serverSettings(base));
    expect(settings.get('wal_level')).toBe('logical');
    expect(settings.get('fsync')).toBe('off');
    expect(settings.get('synchronous_commit')).toBe('on');
    expect(settings.get('max_replication_slots')).toBe('64');
    expect(settings.get('max_wal_senders')).toBe('64');
    expect(settings.get('unix_socket_directories')).toBe('/tmp/walflow-pg-abc');
    expect(settings.get('listen_addresses')).toBe('127.0.0.1');
  });

  it('leaves output_plugin_libraries out when the server does not know it', () => {
    expect(new Map(serverSettings(base)).has('output_plugin_libraries')).toBe(false);
  });

  it('lists wal2json in output_plugin_libraries when the GUC exists', () => {
    const settings = new Map(serverSettings({ ...base, hasOutputPluginLibraries: true }));
    expect(settings.get('output_plugin_libraries')).toBe('pgoutput,test_decoding,wal2json');
  });

  it('does not list wal2json when it is not installed', () => {
    const settings = new Map(serverSettings({ ...base, hasOutputPluginLibraries: true, wal2json: false }));
    expect(settings.has('output_plugin_libraries')).toBe(false);
  });
});

describe('serverArgs', () => {
  it('renders -c name=value pairs and ends with the port', () => {
    const args = serverArgs(base);
    expect(args.slice(0, 2)).toEqual(['-c', 'wal_level=logical']);
    expect(args.slice(-2)).toEqual(['-p', '54321']);
    expect(args.filter((arg) => arg === '-c')).toHaveLength(serverSettings(base).length);
  });
});

describe('shellQuote', () => {
  it('leaves plain words alone', () => {
    expect(shellQuote('wal_level=logical')).toBe('wal_level=logical');
    expect(shellQuote('output_plugin_libraries=pgoutput,test_decoding,wal2json')).toBe(
      'output_plugin_libraries=pgoutput,test_decoding,wal2json',
    );
  });

  it('quotes spaces and single quotes', () => {
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('$HOME')).toBe("'$HOME'");
  });

  it('joins a whole argument list', () => {
    expect(pgCtlServerOptions(['-c', 'unix_socket_directories=/tmp/my dir', '-p', '5'])).toBe(
      "-c 'unix_socket_directories=/tmp/my dir' -p 5",
    );
  });
});
