import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packages = ['core', 'outbox', 'cdc', 'executor', 'nats-sink', 'server', 'cli', 'testing'];

/** Tests run against the TypeScript sources, never a stale dist/. */
const alias: Record<string, string> = Object.fromEntries([
  // A subpath first: the package's own entry would otherwise take it as a path below its index.ts.
  ['@walflow/testing/runtime', fileURLToPath(new URL('./packages/testing/src/runtime.ts', import.meta.url))],
  ...packages.map((name): [string, string] => [`@walflow/${name}`, fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url))]),
]);

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts'],
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
          exclude: ['packages/*/test/**/*.serial.test.ts'],
          globalSetup: ['packages/testing/src/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Tests that restart PostgreSQL, kill processes or hold long transactions: one file at a time, each on
        // a cluster of its own, so they never stall the shared cluster's slot creation.
        resolve: { alias },
        test: {
          name: 'serial',
          include: ['packages/*/test/**/*.serial.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
