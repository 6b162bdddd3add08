#!/usr/bin/env node
import { isWalflowError } from '@walflow/core';
import { createProgram } from './program.js';

try {
  await createProgram().parseAsync(process.argv);
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`walflow: ${message}`);
  process.exitCode = isWalflowError(error, 'config_invalid') ? 2 : 1;
}
