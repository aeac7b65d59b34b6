import { isApplePlatform, shortcutLabel } from '../util/platform';
import { RovingFocus } from './roving-focus.svelte';
import { DEFAULT_VIEW, isViewId, VIEWS, viewEntry, type ViewEntry, type ViewId } from './views';

const ROUTE_PREFIX = '#/';

/** The browser bits AppState touches, so that it can be created without a window in tests. */
export interface AppHost {
  readonly location: { readonly hash: string };
  readonly history: { replaceState(data: unknown, unused: string, url?: string | URL | null): void };
  addEventListener(type: 'hashchange', listener: () => void): void;
  removeEventListener(type: 'hashchange', listener: () => void): void;
  readonly userAgent: string;
}

/**
 * Which view is showing, and the keyboard shortcuts that change it. The view is mirrored in the URL
 * hash (`#/gallery`) so a reload keeps it and tests can open a view directly.
 */
export class AppState {
  readonly views: readonly ViewEntry[] = VIEWS;
  readonly #host: AppHost;
  readonly apple: boolean;
  /** Arrow-key focus in the sidebar; its tab stop follows the current view. */
  readonly nav: RovingFocus;
  #view = $state<ViewId>(DEFAULT_VIEW);

  constructor(host: AppHost) {
    this.#host = host;
    this.apple = isApplePlatform(host.userAgent);
    this.#view = this.#viewFromHash() ?? DEFAULT_VIEW;
    this.nav = new RovingFocus(() => this.views.length, () => this.#indexOf(this.#view));
  }

  get view(): ViewId {
    return this.#view;
  }

  get current(): ViewEntry {
    return viewEntry(this.#view);
  }

  shortcut(entry: ViewEntry): string {
    return shortcutLabel(entry.key, this.apple);
  }

  /** "Control+1" or "Meta+1", for `aria-keyshortcuts`. */
  ariaShortcut(entry: ViewEntry): string {
    return `${this.apple ? 'Meta' : 'Control'}+${entry.key}`;
  }

  navigate(view: ViewId): void {
    this.#view = view;
    this.nav.sync(this.#indexOf(view));
    if (this.#viewFromHash() !== view) this.#host.history.replaceState(null, '', `${ROUTE_PREFIX}${view}`);
  }

  /** Ctrl+1…5 (Cmd on macOS) switch views. Returns true when the key was used. */
  handleShortcut(event: KeyboardEvent): boolean {
    const modifier = this.apple ? event.metaKey && !event.ctrlKey : event.ctrlKey && !event.metaKey;
    if (!modifier || event.altKey || event.shiftKey) return false;
    const entry = this.views.find((view) => view.key === event.key);
    if (entry === undefined) return false;
    event.preventDefault();
    this.navigate(entry.id);
    return true;
  }

  /** Follows hash changes made outside the app (a typed URL, a test). Returns the cleanup. */
  connect(): () => void {
    const onHashChange = () => {
      const view = this.#viewFromHash();
      if (view === null) return;
      this.#view = view;
      this.nav.sync(this.#indexOf(view));
    };
    this.#host.addEventListener('hashchange', onHashChange);
    return () => this.#host.removeEventListener('hashchange', onHashChange);
  }

  #indexOf(view: ViewId): number {
    return Math.max(0, this.views.findIndex((entry) => entry.id === view));
  }

  #viewFromHash(): ViewId | null {
    const hash = this.#host.location.hash;
    if (!hash.startsWith(ROUTE_PREFIX)) return null;
    const id = hash.slice(ROUTE_PREFIX.length);
    return isViewId(id) ? id : null;
  }
}
