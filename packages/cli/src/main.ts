#!/usr/bin/env node
// The CLI unbundled, one module per file as tsc wrote them: the bench's CPU profiles run it so that their frames
// name each package and file. Users run walflow.js, the same CLI from one bundled file.
import { runCli } from './run-cli.js';

await runCli(process.argv);
