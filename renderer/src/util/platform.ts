/** Keyboard conventions of the machine the page runs on (the browser's, not the server's). */
export function isApplePlatform(userAgent: string): boolean {
  return /Mac|iPhone|iPad/.test(userAgent);
}

/** How a Ctrl/Cmd shortcut is written on this platform: "⌘1" or "Ctrl+1". */
export function shortcutLabel(key: string, apple: boolean): string {
  return apple ? `⌘${key}` : `Ctrl+${key}`;
}
