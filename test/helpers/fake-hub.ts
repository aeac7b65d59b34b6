/**
 * A local stand-in for the Hugging Face hub: serves a tiny repository in the hub's URL layout (tree
 * API, `/resolve/` answering with a 302 to a `/cdn/` path, Range support) with knobs to misbehave:
 * cut a transfer after N bytes, answer an error status, serve wrong bytes, ignore Range.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFile {
  path: string;
  content: Buffer;
  /** Listed with hub LFS metadata (sha256 + size), like weights are. */
  lfs: boolean;
}

export interface RecordedRequest {
  path: string;
  range: string | undefined;
}

export interface FakeHub {
  baseUrl: string;
  repo: string;
  files: FakeFile[];
  /** Every request in order, with its Range header. */
  requests: RecordedRequest[];
  /** Cut the connection after `afterBytes` of body for `path`, `times` times (then serve normally). */
  cut: { path: string; afterBytes: number; times: number } | null;
  /** Answer this HTTP status for a file's resolve URL. */
  failStatus: Map<string, number>;
  /** Serve these files with a flipped byte (same size, wrong sha256). */
  corrupt: Set<string>;
  /** Answer 200 with the whole file even to range requests, like a server without range support. */
  ignoreRange: boolean;
  /** Wait this long between 16 KiB chunks of a body (a slow link, so a UI can watch and pause). */
  chunkDelayMs: number;
  /** Requests for one file's CDN URL (the bytes themselves). */
  cdnRequests(path: string): RecordedRequest[];
  close(): Promise<void>;
}

export const FAKE_REPO = 'Salesforce/tiny-blipdiffusion';
export const BIG_FILE = 'unet/diffusion_pytorch_model.safetensors';

function fakeFiles(): FakeFile[] {
  const json = (value: unknown): Buffer => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
  return [
    { path: '.gitattributes', content: Buffer.from('*.safetensors filter=lfs diff=lfs merge=lfs -text\n'), lfs: false },
    { path: 'model_index.json', content: json({ _class_name: 'BlipDiffusionPipeline', unet: ['diffusers', 'UNet2DConditionModel'] }), lfs: false },
    { path: 'unet/config.json', content: json({ _class_name: 'UNet2DConditionModel', sample_size: 8 }), lfs: false },
    { path: BIG_FILE, content: randomBytes(300 * 1024), lfs: true },
    { path: 'text_encoder/model.safetensors', content: randomBytes(40 * 1024), lfs: true },
  ];
}

function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

function treeEntries(files: FakeFile[]): unknown[] {
  const dirs = new Set(files.flatMap((f) => (f.path.includes('/') ? [f.path.slice(0, f.path.lastIndexOf('/'))] : [])));
  return [
    ...[...dirs].map((path) => ({ type: 'directory', path, size: 0, oid: sha256(Buffer.from(path)).slice(0, 40) })),
    ...files.map((f) => ({
      type: 'file',
      path: f.path,
      size: f.lfs ? 135 : f.content.length,
      oid: createHash('sha1').update(f.content).digest('hex'),
      ...(f.lfs ? { lfs: { oid: sha256(f.content), size: f.content.length, pointerSize: 135 } } : {}),
    })),
  ];
}

/** Every file under `root` as hub files (safetensors listed with LFS metadata), paths prefixed with `prefix`. */
export function filesOfFolder(root: string, prefix = ''): FakeFile[] {
  return readdirSync(root, { recursive: true })
    .map(String)
    .filter((path) => statSync(join(root, path)).isFile())
    .map((path) => ({ path: `${prefix}${path.split('\\').join('/')}`, content: readFileSync(join(root, path)), lfs: path.endsWith('.safetensors') }));
}

/** Serves `files` (default: a small fake repository) as `repo` (default FAKE_REPO). */
export async function startFakeHub(files: FakeFile[] = fakeFiles(), repo: string = FAKE_REPO): Promise<FakeHub> {
  const hub: Omit<FakeHub, 'baseUrl' | 'close'> = {
    repo,
    files,
    requests: [],
    cut: null,
    failStatus: new Map(),
    corrupt: new Set(),
    ignoreRange: false,
    chunkDelayMs: 0,
    cdnRequests: (path) => hub.requests.filter((r) => r.path === `/cdn/${repo}/${path}`),
  };
  const treePath = `/api/models/${repo}/tree/main`;
  const resolvePrefix = `/${repo}/resolve/main/`;
  const cdnPrefix = `/cdn/${repo}/`;

  const serveBody = (req: IncomingMessage, res: ServerResponse, file: FakeFile): void => {
    let content = file.content;
    if (hub.corrupt.has(file.path)) {
      content = Buffer.from(content);
      content[content.length >> 1] = (content[content.length >> 1] ?? 0) ^ 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (range && !hub.ignoreRange) {
      start = Number(range[1]);
      if (start >= content.length) {
        res.writeHead(416, { 'content-range': `bytes */${content.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-length': content.length - start, 'content-range': `bytes ${start}-${content.length - 1}/${content.length}` });
    } else {
      res.writeHead(200, { 'content-length': content.length, 'accept-ranges': 'bytes' });
    }
    const body = content.subarray(start);
    const cut = hub.cut;
    if (cut && cut.path === file.path && cut.times > 0 && cut.afterBytes < body.length) {
      cut.times -= 1;
      // Send part of the body, then drop the socket mid-transfer like a broken connection.
      res.write(body.subarray(0, cut.afterBytes), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    // Several writes, so a client can abort between chunks.
    if (hub.chunkDelayMs <= 0) {
      for (let offset = 0; offset < body.length; offset += 16 * 1024) res.write(body.subarray(offset, offset + 16 * 1024));
      res.end();
      return;
    }
    let offset = 0;
    const next = (): void => {
      if (res.destroyed) return;
      if (offset >= body.length) {
        res.end();
        return;
      }
      res.write(body.subarray(offset, offset + 16 * 1024));
      offset += 16 * 1024;
      setTimeout(next, hub.chunkDelayMs);
    };
    next();
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = decodeURIComponent(url.pathname);
    hub.requests.push({ path, range: req.headers.range });
    if (path === treePath && url.searchParams.get('recursive') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(treeEntries(hub.files)));
      return;
    }
    if (path.startsWith(resolvePrefix)) {
      const filePath = path.slice(resolvePrefix.length);
      const status = hub.failStatus.get(filePath);
      if (status) {
        res.writeHead(status, { 'content-type': 'text/plain' }).end(`error ${status}`);
        return;
      }
      if (!hub.files.some((f) => f.path === filePath)) {
        res.writeHead(404).end('Entry not found');
        return;
      }
      res.writeHead(302, { location: `${cdnPrefix}${filePath.split('/').map(encodeURIComponent).join('/')}` }).end();
      return;
    }
    const file = path.startsWith(cdnPrefix) ? hub.files.find((f) => f.path === path.slice(cdnPrefix.length)) : undefined;
    if (file) {
      serveBody(req, res, file);
      return;
    }
    res.writeHead(404).end('Repository not found');
  });

  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as AddressInfo;
  return Object.assign(hub, {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((closed) => {
        server.closeAllConnections();
        server.close(() => closed());
      }),
  });
}
