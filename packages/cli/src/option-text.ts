import { isWalflowError } from '@walflow/core';
import { parseTime } from '@walflow/server';
import { InvalidArgumentError } from 'commander';

/**
 * Option argument parsers for text, run by commander while it reads the command line: a bad value is refused
 * naming its option (exit 2), before the configuration is read or the database touched.
 */

/** A filter or a name: an empty value would match nothing, or name the replay after nothing. */
export function nonEmptyText(text: string): string {
  if (text.trim() === '') throw new InvalidArgumentError('expected a value, not an empty one.');
  return text;
}

/** A time as parseTime reads it (ISO-8601 or relative); kept as typed, so that the command reads all its times at one instant. */
export function timeText(text: string): string {
  try {
    parseTime(text);
  } catch (error) {
    if (isWalflowError(error, 'config_invalid')) throw new InvalidArgumentError(error.message);
    throw error;
  }
  return text;
}
