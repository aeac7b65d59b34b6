import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { ServeProcess } from '../helpers/built-app';
import { startStudioSession, type StudioSession } from './support/studio-session';


const VIEWS = [
  { id: 'subjects', title: 'Subjects', shortcut: '1' },
  { id: 'generate', title: 'Generate', shortcut: '2' },
  { id: 'edit', title: 'Edit', shortcut: '3' },
  { id: 'gallery', title: 'Gallery', shortcut: '4' },
  { id: 'settings', title: 'Models & Settings', shortcut: '5' },
] as const;

/** The nets of a BLIP-Diffusion model, in the order the engine lists them. */
const NETS = ['qformer', 'text_encoder', 'unet', 'controlnet', 'vae'] as const;

let session: StudioSession;
let serve: ServeProcess;
let browser: Browser;
let page: Page;
let pageProblems: string[] = [];

beforeAll(async () => {
  session = await startStudioSession({ tempPrefix: 'blip-e2e-', viewport: { width: 1280, height: 800 }, shotPrefix: '' });
  ({ serve, browser, page, problems: pageProblems } = session);
});

afterAll(async () => {
  await session?.close();
});

const shoot = (name: string): Promise<void> => session.shoot(name);

/** Scrolls the Execution providers card to the top of the view, below the view's sticky header. */
const showBackendsCard = (): Promise<void> =>
  page.getByTestId('backends-card').evaluate((card) => {
    card.scrollIntoView({ block: 'start' });
    let scroller = card.parentElement;
    while (scroller && scroller.scrollHeight <= scroller.clientHeight) scroller = scroller.parentElement;
    scroller?.scrollBy(0, -96);
  });

describe('the app shell in Chromium against serve mode', () => {
  it('opens with the token, drops it from the address and shows the Subjects view', async () => {
    expect(new URL(page.url()).search).toBe('');
    await expect.poll(() => page.getByTestId('view-subjects').isVisible()).toBe(true);
    expect(await page.title()).toMatch(/BLIP Studio/);
    expect(await page.getByTestId('nav-subjects').getAttribute('aria-current')).toBe('page');
  });

  it('navigates every view by mouse, each with a heading and an empty state that says what to do', async () => {
    for (const view of VIEWS) {
      await page.getByTestId(`nav-${view.id}`).click();
      const root = page.getByTestId(`view-${view.id}`);
      await expect.poll(() => root.isVisible()).toBe(true);
      expect(await root.getByRole('heading', { level: 1 }).innerText()).toContain(view.title);
      expect(await page.getByTestId(`nav-${view.id}`).getAttribute('aria-current')).toBe('page');
      expect((await root.innerText()).length).toBeGreaterThan(40);
      await shoot(`light-${view.id}`);
    }
  });

  it('keeps every navigation item, with its shortcut hint, inside the sidebar', async () => {
    for (const view of VIEWS) {
      const item = page.getByTestId(`nav-${view.id}`);
      await item.hover();
      const overflow = await item.evaluate((button) => {
        const nav = button.closest('nav')!.getBoundingClientRect();
        const hint = button.querySelector('kbd')?.getBoundingClientRect();
        return { button: button.getBoundingClientRect().right - nav.right, hint: hint ? hint.right - nav.right : 0 };
      });
      expect(overflow.button, `nav-${view.id} overflows the sidebar`).toBeLessThanOrEqual(0);
      expect(overflow.hint, `the shortcut hint of nav-${view.id} overflows the sidebar`).toBeLessThanOrEqual(0);
    }
  });

  it('navigates by keyboard: shortcuts and arrow keys in the sidebar', async () => {
    for (const view of VIEWS) {
      await page.keyboard.press(`Control+${view.shortcut}`);
      await expect.poll(() => page.getByTestId(`view-${view.id}`).isVisible()).toBe(true);
    }
    await page.getByTestId('nav-subjects').click();
    await page.getByTestId('nav-subjects').focus();
    await page.keyboard.press('ArrowDown');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('nav-generate');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('view-generate').isVisible()).toBe(true);
    await page.keyboard.press('End');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('nav-settings');
    await page.keyboard.press('Space');
    await expect.poll(() => page.getByTestId('view-settings').isVisible()).toBe(true);
  });

  it('shows the execution providers and runs a device check through the job status area', async () => {
    await page.getByTestId('nav-settings').click();
    const cpu = page.getByTestId('backend-cpu');
    await expect.poll(() => cpu.isVisible(), { timeout: 30_000 }).toBe(true);
    expect(await cpu.innerText()).toMatch(/CPU/);
    await cpu.getByRole('button', { name: /check/i }).click();
    const status = page.getByTestId('status-area');
    await expect.poll(() => status.innerText(), { timeout: 30_000 }).toMatch(/match the reference/i);
    await shoot('light-settings-after-check');
  });

  it('shows where each net runs on each provider, and marks every net that falls back', async () => {
    await page.getByTestId('nav-settings').click();
    const cpuNets = page.getByTestId('backend-nets-cpu');
    await expect.poll(() => cpuNets.count(), { timeout: 30_000 }).toBe(1);
    const rowsOf = (name: string) =>
      page
        .getByTestId(`backend-nets-${name}`)
        .locator('li')
        .evaluateAll((items) => items.map((item) => [item.getAttribute('data-testid'), item.getAttribute('data-device')]));
    // The CPU runs every net itself with the fused kernels: one quiet line, the list folded away.
    expect(await rowsOf('cpu')).toEqual(NETS.map((net) => [`backend-net-cpu-${net}`, 'cpu']));
    const cpuPlacement = page.getByTestId('backend-placement-cpu');
    expect(await cpuPlacement.locator('summary').innerText()).toBe('All nets run here with fused kernels');
    expect(await cpuPlacement.evaluate((details) => (details as HTMLDetailsElement).open)).toBe(false);
    expect(await cpuNets.locator('[data-mark]').count()).toBe(0);

    const backends = await page
      .locator('[data-testid^="backend-"][data-available]')
      .evaluateAll((items) => items.map((item) => ({ name: item.getAttribute('data-testid')!.slice('backend-'.length), available: item.getAttribute('data-available') === 'true' })));
    expect(backends.map((backend) => backend.name)).toContain('cpu');
    for (const { name, available } of backends) {
      const rows = await rowsOf(name);
      expect(rows.map(([testId]) => testId)).toEqual(NETS.map((net) => `backend-net-${name}-${net}`));
      const fallbacks = page.getByTestId(`backend-nets-${name}`).locator('[data-mark="fallback"]');
      if (available) {
        // An available provider runs every net itself.
        expect(rows.map(([, device]) => device)).toEqual(NETS.map(() => name));
        expect(await fallbacks.count()).toBe(0);
        continue;
      }
      // An unavailable one (the CUDA add-on is not installed here) runs every net on the CPU, and says so, unfolded.
      expect(rows.map(([, device]) => device)).toEqual(NETS.map(() => 'cpu'));
      const placement = page.getByTestId(`backend-placement-${name}`);
      expect(await placement.evaluate((details) => (details as HTMLDetailsElement).open)).toBe(true);
      expect(await placement.locator('summary').innerText()).toContain(`runs on cpu instead of ${name}`);
      expect(await fallbacks.count()).toBe(NETS.length);
      for (const net of NETS) {
        const mark = page.getByTestId(`backend-net-${name}-${net}`).locator('[data-mark="fallback"]');
        expect(await mark.isVisible()).toBe(true);
        expect(await mark.innerText()).toBe('CPU fallback');
      }
    }
    await showBackendsCard();
    await shoot('light-settings-backends');
  });

  it('shows the data folder with its size and the free space on its disk', async () => {
    await page.getByTestId('nav-settings').click();
    await expect.poll(() => page.getByTestId('data-folder-path').isVisible(), { timeout: 30_000 }).toBe(true);
    expect(await page.getByTestId('data-folder-path').innerText()).toBe(session.data.path);
    expect(await page.getByTestId('data-folder-free').innerText()).toMatch(/Free on this disk\s+[\d.]+ (KB|MB|GB|TB)/);
  });

  it('follows the OS theme and honours an explicit choice', async () => {
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const luminance = (rgb: string) => {
      const [r, g, b] = (rgb.match(/\d+/g) ?? ['0', '0', '0']).map(Number);
      return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
    };
    await page.emulateMedia({ colorScheme: 'light' });
    await expect.poll(async () => luminance(await background())).toBeGreaterThan(180);
    await page.emulateMedia({ colorScheme: 'dark' });
    await expect.poll(async () => luminance(await background())).toBeLessThan(80);
    for (const view of VIEWS) {
      await page.getByTestId(`nav-${view.id}`).click();
      await shoot(`dark-${view.id}`);
    }
    await showBackendsCard();
    await shoot('dark-settings-backends');
    // An explicit "light" choice wins over the dark OS setting, and survives a reload (stored in SQLite).
    await page.getByTestId('nav-settings').click();
    await page.getByTestId('theme-select').selectOption('light');
    await expect.poll(async () => luminance(await background())).toBeGreaterThan(180);
    await page.reload();
    await expect.poll(async () => luminance(await background())).toBeGreaterThan(180);
    await page.getByTestId('theme-select').selectOption('system');
    await expect.poll(async () => luminance(await background())).toBeLessThan(80);
  });

  it('has no console errors and no CSP violations', () => {
    expect(pageProblems).toEqual([]);
  });
});

describe('serve mode guards', () => {
  it('refuses a page, an API call and a socket without the token', async () => {
    const stranger = await browser.newContext();
    const strangerPage = await stranger.newPage();
    const response = await strangerPage.goto(serve.origin + '/');
    expect(response?.status()).toBe(401);
    const probe = await strangerPage.evaluate(async () => {
      const call = await fetch('/api/call/getSettings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"args":[]}' });
      const socket = await new Promise<string>((resolve) => {
        const ws = new WebSocket(`ws://${location.host}/api/events`);
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('refused');
      });
      return { callStatus: call.status, socket };
    });
    expect(probe).toEqual({ callStatus: 401, socket: 'refused' });
    await stranger.close();
  });

  it('is not reachable on a non-loopback address of this machine', async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((address) => address && !address.internal && address.family === 'IPv4');
    expect(external, 'this test needs a non-loopback IPv4 interface').toBeDefined();
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({ host: external!.address, port: serve.port });
      socket.on('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(outcome).toBe('ECONNREFUSED');
  });
});
