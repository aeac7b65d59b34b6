import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BUILT_CLI, REPO_ROOT, requireBuild } from '../helpers/built-app';
import { filesOfFolder as filesOf, startFakeHub, type FakeHub } from '../helpers/fake-hub';
import { makeTempDir } from '../helpers/temp-dir';

const DEMO = join(REPO_ROOT, 'resources/demo-model/tiny-blipdiffusion-controlnet');
const BERT = join(REPO_ROOT, 'resources/demo-model/bert-tiny-uncased');
let hub: FakeHub;
let data: ReturnType<typeof makeTempDir>;

/** The CLI in a child process (async, so the fake hub in this process can answer it). */
function cli(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BUILT_CLI, '--data-dir', data.path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(async () => {
  requireBuild();
  data = makeTempDir('blip-cli-models-');
  // The demo model in the hub's layout, with its Q-Former tokenizer folder inside it.
  hub = await startFakeHub([...filesOf(DEMO), ...filesOf(BERT, 'bert-tiny-uncased/')]);
});
afterAll(async () => {
  await hub?.close();
  data?.remove();
});

describe('CLI models', () => {
  it('downloads a model from a hub (mirror URL), checks it, adds it, and generates with it', async () => {
    const target = join(data.path, 'downloaded');
    const download = await cli('models', 'download', hub.repo, '--to', target, '--base-url', hub.baseUrl);
    expect(download.stderr).toMatch(/downloaded .* into/);
    expect(download.status).toBe(0);
    const list = JSON.parse((await cli('models', 'list', '--json')).stdout) as { folder: string; isDemo: boolean; status: string }[];
    expect(list).toEqual(expect.arrayContaining([expect.objectContaining({ folder: target, isDemo: false, status: 'ready' })]));
    const out = join(data.path, 'out.png');
    const generated = await cli('generate', '--model', target, '--reference', join(REPO_ROOT, 'resources/demo-photos/dog-00.jpg'), '--subject', 'dog', '--prompt', 'x', '--steps', '2', '--height', '32', '--width', '32', '--seed', '1', '--out', out);
    expect(generated.status, generated.stderr).toBe(0);
  });

  it('refuses to add a folder whose weights do not match its configs, naming the components', async () => {
    const result = await cli('models', 'add', join(REPO_ROOT, 'test/fixtures/parity/real-shapes/configs/blipdiffusion'));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/holds no weights file|does not match its configs/);
  });
});
