import { existsSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILT_CLI = join(REPO_ROOT, 'out/main/cli.js');
export const BUILT_SERVE = join(REPO_ROOT, 'out/main/serve.js');

/** The E2E tests exercise the built app, exactly as a user runs it; `npm test` builds first. */
export function requireBuild(): void {
  if (!existsSync(BUILT_CLI) || !existsSync(BUILT_SERVE) || !existsSync(join(REPO_ROOT, 'out/renderer/index.html'))) {
    throw new Error('The app is not built: run `npm run build` (npm test does it first).');
  }
}

export function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BUILT_CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export interface ServeProcess {
  child: ChildProcess;
  openUrl: string;
  origin: string;
  port: number;
  stop(): Promise<void>;
}

/** Starts `serve` on a free port and waits for the line with the URL to open. */
export async function startServe(dataDir: string): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BUILT_SERVE, '--data-dir', dataDir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const openUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /open:\s+(http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${output}`)));
  });
  const url = new URL(openUrl);
  return {
    child,
    openUrl,
    origin: url.origin,
    port: Number(url.port),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
