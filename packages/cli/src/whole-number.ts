import { InvalidArgumentError } from 'commander';

/** An option's argument parser for a whole number in [min, max]: anything else is refused by name (exit 2). */
export function wholeNumber(min: number, max: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || value < min || value > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    return value;
  };
}
