/** Something just deleted that can be brought back until its undo window closes (shown as a toast). */
export interface PendingUndo {
  readonly id: number;
  /** How the toast names it. */
  readonly name: string;
  /** Epoch milliseconds when main purges it for good. */
  readonly until: number;
}

/** The one pending undo of a view: shown until main's window closes, replaced by the next deletion. */
export class UndoWindow {
  #pending = $state.raw<PendingUndo | null>(null);
  #timer: ReturnType<typeof setTimeout> | null = null;

  get pending(): PendingUndo | null {
    return this.#pending;
  }

  /** `undoUntil` is main's ISO time; an unreadable one gets a short window rather than none. */
  show(id: number, name: string, undoUntil: string): void {
    this.clear();
    const parsed = Date.parse(undoUntil);
    const until = Number.isNaN(parsed) ? Date.now() + 5_000 : parsed;
    this.#pending = { id, name, until };
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#pending = null;
    }, Math.max(0, until - Date.now()));
  }

  /** Takes the pending undo (for the Undo button), closing the toast. */
  take(): PendingUndo | null {
    const pending = this.#pending;
    this.clear();
    return pending;
  }

  clear(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#pending = null;
  }
}
