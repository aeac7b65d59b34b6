import { InvalidArgumentError } from 'commander';

/** commander parsers for bounded option values, with the message the user sees on a bad one. */
export const integerIn = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
  return n;
};

export const numberIn = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number from ${min} to ${max}.`);
  return n;
};
