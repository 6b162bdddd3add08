#!/usr/bin/env node
// The `walflow` bin (and the Docker image's entry point): the CLI from its bundle, compiled from the code cache
// `pnpm build` made of it when V8 accepts that cache.
import { BUNDLE_FILE, loadBundle } from './load-bundle.js';
import type { runCli } from './run-cli.js';

const cli = loadBundle(BUNDLE_FILE, { useCodeCache: true }).exports as { runCli: typeof runCli };
await cli.runCli(process.argv);
