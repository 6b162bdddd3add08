// Types what global-setup.ts provide()s and test files inject(); imported for its side effect on vitest's types.
declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the shared test cluster's `postgres` database. */
    walflowPostgresUrl: string;
    /** Whether that cluster can create wal2json slots. */
    walflowWal2json: boolean;
  }
}

export {};
