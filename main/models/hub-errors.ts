/**
 * The one error type a hub download raises: every failure names the file (when there is one), what
 * happened and what the user can do, so the UI can show `message` as is.
 */
export type HubErrorKind =
  | 'listing' // the file list could not be fetched or read
  | 'http' // a file request answered with an error status
  | 'network' // the connection failed or dropped and retries ran out
  | 'checksum' // the bytes arrived but their sha256 is wrong
  | 'size' // the server sent more or fewer bytes than the hub metadata says
  | 'disk-space' // not enough free space to start
  | 'disk' // writing to disk failed
  | 'bad-entry' // the file list holds a path we refuse to write
  | 'paused'; // the caller aborted through its signal; call again to resume

export class HubDownloadError extends Error {
  constructor(
    readonly kind: HubErrorKind,
    message: string,
    /** The repository-relative path of the file concerned, when there is one. */
    readonly file?: string,
    /** The HTTP status, for `listing` and `http` errors. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HubDownloadError';
  }
}

/** Advice for an HTTP status, phrased for someone installing a model. */
export function statusAdvice(status: number): string {
  if (status === 401 || status === 403) return 'the repository may be gated or private on this server; check access or use another mirror';
  if (status === 404) return 'check the repository name and revision, or that this mirror carries the file';
  if (status === 429) return 'the server is rate-limiting; wait a few minutes and resume';
  if (status >= 500) return 'the server had a problem; resume later (finished files are kept)';
  return 'resume later or try another mirror';
}

/** 1536 → "1.5 KiB": sizes in messages people read. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
