import type { StudioErrorCode } from './contract';

/** An error meant for the user: its message crosses the transport as is, with a machine-readable code. */
export class StudioError extends Error {
  constructor(
    readonly code: StudioErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StudioError';
  }
}
