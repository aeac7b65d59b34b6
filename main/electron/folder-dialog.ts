/**
 * The desktop app's native folder dialog, shown by main over the window: the page asks for a folder
 * and gets back only the path the user chose (or null), never a view of the file system.
 */
import { dialog, type BrowserWindow } from 'electron';

export function folderChooser(currentWindow: () => BrowserWindow | null): (title: string) => Promise<string | null> {
  return async (title) => {
    const options = { title, properties: ['openDirectory' as const] };
    const window = currentWindow();
    const result = window ? await dialog.showOpenDialog(window, options) : await dialog.showOpenDialog(options);
    return result.canceled ? null : (result.filePaths[0] ?? null);
  };
}
