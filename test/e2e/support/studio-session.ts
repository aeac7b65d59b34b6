/**
 * One E2E session: a fresh data folder, the built serve mode on it, and Chromium open on its URL.
 * Every UI test file starts one in `beforeAll` and closes it in `afterAll`.
 */
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { requireBuild, startServe, type ServeProcess } from '../../helpers/built-app';
import { makeTempDir } from '../../helpers/temp-dir';
import { openStudioPage, SCREENSHOTS } from './studio-browser';

export interface StudioSession {
  data: ReturnType<typeof makeTempDir>;
  serve: ServeProcess;
  browser: Browser;
  page: Page;
  /** Console errors, page errors and CSP violations so far: a test asserts it stays empty. */
  problems: string[];
  /** Screenshot of the viewport into test-results/screenshots/<prefix><name>.png. */
  shoot(name: string): Promise<void>;
  close(): Promise<void>;
}

export interface StudioSessionOptions {
  /** Prefix of the temporary data folder's name. */
  tempPrefix: string;
  viewport: { width: number; height: number };
  /** Prefix of every screenshot's file name ('' for none). */
  shotPrefix?: string;
  /** Runs on the data folder before serve starts (e.g. settings or files a test needs). */
  prepare?: (dataDir: string) => void | Promise<void>;
}

export async function startStudioSession(options: StudioSessionOptions): Promise<StudioSession> {
  requireBuild();
  const data = makeTempDir(options.tempPrefix);
  await options.prepare?.(data.path);
  const serve = await startServe(data.path);
  const { browser, page, problems } = await openStudioPage(serve.openUrl, options.viewport);
  const { width, height } = options.viewport;
  return {
    data,
    serve,
    browser,
    page,
    problems,
    async shoot(name: string): Promise<void> {
      // Away from the sidebar, so no hover hint covers the shot.
      await page.mouse.move(width / 2, height - 10);
      await page.screenshot({ path: join(SCREENSHOTS, `${options.shotPrefix ?? ''}${name}.png`), fullPage: false, animations: 'disabled' });
    },
    async close(): Promise<void> {
      await browser.close();
      await serve.stop();
      data.remove();
    },
  };
}
