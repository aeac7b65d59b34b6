import type { StudioErrorCode, StudioErrorPayload } from '../contract';

const ERROR_CODES: ReadonlySet<string> = new Set<StudioErrorCode>([
  'invalid-request',
  'unknown-method',
  'not-found',
  'conflict',
  'unavailable',
  'cancelled',
  'internal',
]);

/** Electron prefixes errors that cross `ipcRenderer.invoke`; the user should never read that. */
const IPC_PREFIX = /^Error invoking remote method '[^']*': (?:\w*Error: )?/;

/** An API call that failed. `message` is written for the user; `code` is for the code. */
export class StudioError extends Error {
  readonly code: StudioErrorCode;

  constructor(code: StudioErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StudioError';
    this.code = code;
  }

  static fromPayload(payload: StudioErrorPayload): StudioError {
    return new StudioError(payload.code, payload.message);
  }
}

/**
 * The API could not be reached at all (server down, socket closed, not signed in): the app shows the
 * connection banner for these, and an inline message for every other `StudioError`.
 */
export class StudioUnreachableError extends StudioError {
  constructor(message: string, options?: ErrorOptions) {
    super('unavailable', message, options);
    this.name = 'StudioUnreachableError';
  }
}

export function isErrorPayload(value: unknown): value is StudioErrorPayload {
  if (typeof value !== 'object' || value === null) return false;
  const { code, message } = value as Record<string, unknown>;
  return typeof code === 'string' && ERROR_CODES.has(code) && typeof message === 'string';
}

/**
 * Whatever a call rejected with, as a `StudioError`. The Electron bridge may reject with a plain
 * `StudioErrorPayload` (plain objects keep their fields across contextBridge; Error subclasses do not).
 */
export function toStudioError(error: unknown): StudioError {
  if (error instanceof StudioError) return error;
  if (isErrorPayload(error)) return StudioError.fromPayload(error);
  if (error instanceof Error) {
    const message = error.message.replace(IPC_PREFIX, '').trim();
    return new StudioError('internal', message || 'Something went wrong.', { cause: error });
  }
  return new StudioError('internal', 'Something went wrong.', { cause: error });
}
