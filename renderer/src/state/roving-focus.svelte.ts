import type { Attachment } from 'svelte/attachments';

/**
 * Roving tab index for a vertical list of controls (the sidebar): one item is in the tab order,
 * Up/Down move between items (wrapping), Home/End jump to the ends, Enter/Space stay native.
 */
export class RovingFocus {
  readonly #elements: (HTMLElement | undefined)[] = [];
  readonly #count: () => number;
  #active = $state(0);

  /** `count` reads the number of items; `initial` the index that owns the tab stop. */
  constructor(count: () => number, initial: () => number) {
    this.#count = count;
    this.#active = initial();
  }

  /** The index that is in the tab order. */
  get active(): number {
    return this.#active;
  }

  tabIndex(index: number): 0 | -1 {
    return index === this.#active ? 0 : -1;
  }

  /** Keeps the tab stop on `index` without moving focus (e.g. after navigation by shortcut). */
  sync(index: number): void {
    this.#active = index;
  }

  /** Registers the element of item `index`. */
  item(index: number): Attachment<HTMLElement> {
    return (element) => {
      this.#elements[index] = element;
      return () => {
        if (this.#elements[index] === element) this.#elements[index] = undefined;
      };
    };
  }

  onfocusin = (index: number): void => {
    this.#active = index;
  };

  onkeydown = (event: KeyboardEvent): void => {
    const count = this.#count();
    if (count === 0) return;
    let next: number;
    switch (event.key) {
      case 'ArrowDown':
        next = (this.#active + 1) % count;
        break;
      case 'ArrowUp':
        next = (this.#active - 1 + count) % count;
        break;
      case 'Home':
        next = 0;
        break;
      case 'End':
        next = count - 1;
        break;
      default:
        return;
    }
    event.preventDefault();
    this.#active = next;
    this.#elements[next]?.focus();
  };
}
