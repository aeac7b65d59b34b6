/**
 * A one-line progress bar on stderr for long CLI jobs: redrawn in place on a terminal, printed every
 * 10 % otherwise (logs, CI), so stdout stays clean for --json output.
 */
export class ProgressBar {
  readonly #tty = process.stderr.isTTY === true;
  #lastDecile = -1;

  constructor(private readonly label: string) {}

  /** `detail` (e.g. the loss) goes after the timing. */
  update(done: number, total: number, etaMs: number | null, elapsedMs: number, detail = ''): void {
    const width = 24;
    const filled = Math.round((done / total) * width);
    const perStep = done > 0 ? `${(elapsedMs / done / 1000).toFixed(2)} s/step` : '';
    const eta = etaMs !== null ? `ETA ${formatSeconds(etaMs)}` : '';
    const line = `${this.label} ${String(done).padStart(String(total).length)}/${total} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${[perStep, eta, detail].filter(Boolean).join(' ')}`.trimEnd();
    if (this.#tty) {
      process.stderr.write(`\r${line}\u001b[K`);
      return;
    }
    const decile = Math.floor((done / total) * 10);
    if (decile !== this.#lastDecile || done === total) {
      this.#lastDecile = decile;
      process.stderr.write(`${line}\n`);
    }
  }

  finish(message: string): void {
    process.stderr.write(`${this.#tty ? '\r\u001b[K' : ''}${message}\n`);
  }
}

function formatSeconds(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return seconds >= 60 ? `${Math.floor(seconds / 60)} min ${seconds % 60} s` : `${seconds} s`;
}
