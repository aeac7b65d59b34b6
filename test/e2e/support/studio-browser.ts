/** Lives under test/e2e/ because it passes DOM callbacks into the page (tsconfig.e2e.json has the DOM types). */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../helpers/built-app';

/** Debian's Chromium, with the flags that work on this closed-network machine. */
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
export const SCREENSHOTS = join(REPO_ROOT, 'test-results', 'screenshots');

export interface StudioBrowser {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Console errors, page errors and CSP violations seen so far: a test asserts it stays empty. */
  problems: string[];
}

/** Opens the studio's URL in a fresh Chromium page that records every console error and CSP violation. */
export async function openStudioPage(url: string, viewport: { width: number; height: number }): Promise<StudioBrowser> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  const context = await browser.newContext({ viewport, colorScheme: 'light' });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.addInitScript(() => {
    // Runs inside the page: report CSP violations through the console listener above.
    // eslint-disable-next-line no-console
    document.addEventListener('securitypolicyviolation', (event) => console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`));
  });
  await page.goto(url);
  return { browser, context, page, problems };
}
