/**
 * A weights file that cannot be used. The message always starts with the file's path, so the user
 * knows which of a model's many files is at fault; `problem` is the rest, for callers that show the
 * file separately.
 */
export class WeightsFileError extends Error {
  override readonly name = 'WeightsFileError';

  constructor(
    readonly file: string,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`${file}: ${problem}`, options);
  }
}

/** Wraps any error thrown while reading `file` so its message names the file (once). */
export function inFile(file: string, error: unknown): Error {
  if (error instanceof WeightsFileError) return error;
  if (error instanceof Error && error.name === 'AbortError') return error;
  const problem = error instanceof Error ? error.message : String(error);
  return new WeightsFileError(file, problem, { cause: error });
}
