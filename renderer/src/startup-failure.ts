import { toStudioError } from './transport/studio-error';

/**
 * Shown when the app cannot even mount (e.g. an incomplete preload bridge): plain DOM, no framework,
 * so that the window is never blank.
 */
export function showStartupFailure(target: HTMLElement, error: unknown): void {
  const doc = target.ownerDocument;
  const box = doc.createElement('div');
  box.className = 'startup-failure';
  box.setAttribute('role', 'alert');

  const title = doc.createElement('h1');
  title.textContent = 'BLIP Studio could not start';
  const message = doc.createElement('p');
  message.textContent = toStudioError(error).message;
  const help = doc.createElement('p');
  help.textContent = 'Reloading usually helps. If it keeps happening, reinstalling the app will.';
  const reload = doc.createElement('button');
  reload.type = 'button';
  reload.className = 'btn btn-primary';
  reload.textContent = 'Reload';
  reload.addEventListener('click', () => doc.defaultView?.location.reload());

  box.append(title, message, help, reload);
  target.replaceChildren(box);
}
