import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { openStudio, type Studio } from '../../main/api/studio';
import { MAX_BODY_BYTES, startServer, type RunningServer } from '../../main/serve/server';
import { TOKEN_COOKIE } from '../../main/serve/auth';
import { makeTempDir } from '../helpers/temp-dir';

let data: ReturnType<typeof makeTempDir>;
let renderer: ReturnType<typeof makeTempDir>;
let studio: Studio;
let server: RunningServer;

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request (no URL normalisation, any Host header), to probe the server as an attacker could. */
function send(path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: server.port, path, method: options.method ?? 'GET', headers: { host: `127.0.0.1:${server.port}`, ...options.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const cookie = () => ({ cookie: `${TOKEN_COOKIE}=${server.token}` });
const call = (method: string, args: unknown[], headers: Record<string, string> = cookie()) =>
  send(`/api/call/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ args }) });

beforeAll(async () => {
  data = makeTempDir('blip-serve-data-');
  renderer = makeTempDir('blip-serve-ui-');
  writeFileSync(join(renderer.path, 'index.html'), '<!doctype html><title>BLIP Studio</title>');
  studio = await openStudio({ dataDir: data.path, mode: 'serve' });
  // After opening: at start-up the studio sweeps result files no generation row names (crash leftovers).
  mkdirSync(join(data.path, 'results'), { recursive: true });
  writeFileSync(join(data.path, 'results/one.png'), 'png bytes');
  symlinkSync(join(renderer.path, 'index.html'), join(data.path, 'results/escape.png'));
  server = await startServer({ studio, rendererDir: renderer.path, port: 0 });
});
afterAll(async () => {
  await server.close();
  await studio.close();
  data.remove();
  renderer.remove();
});

describe('serve mode', () => {
  it('prints an open URL on 127.0.0.1 carrying the token', () => {
    expect(server.openUrl).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.token.length).toBeGreaterThanOrEqual(32);
  });

  it('refuses every route without the token', async () => {
    for (const path of ['/', '/index.html', '/files/results/one.png']) expect((await send(path)).status).toBe(401);
    expect((await call('getSettings', [], {})).status).toBe(401);
    expect((await call('getSettings', [], { cookie: `${TOKEN_COOKIE}=wrong` })).status).toBe(401);
    expect((await call('getSettings', [], { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await send('/?token=wrong')).status).toBe(401);
  });

  it('trades the token in the URL for an HttpOnly SameSite cookie and drops it from the address', async () => {
    const response = await send(`/?token=${server.token}`);
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe('/');
    expect(String(response.headers['set-cookie'])).toMatch(new RegExp(`^${TOKEN_COOKIE}=${server.token}; Path=/; HttpOnly; SameSite=Strict`));
  });

  it('serves the renderer and API with the cookie or a bearer token, with a strict CSP', async () => {
    const page = await send('/', { headers: cookie() });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>BLIP Studio</title>');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-frame-options']).toBe('DENY');

    const viaCookie = await call('getLibraryCounts', []);
    expect(JSON.parse(viaCookie.body)).toEqual({ ok: true, value: { subjects: 0, photos: 0, generations: 0, models: 1 } });
    const viaBearer = await call('getSettings', [], { authorization: `Bearer ${server.token}` });
    expect(JSON.parse(viaBearer.body)).toMatchObject({ ok: true, value: { theme: 'system' } });
  });

  it('validates call payloads and names the problem', async () => {
    const bad = JSON.parse((await call('updateSettings', [{ threads: -1 }])).body);
    expect(bad).toMatchObject({ ok: false, error: { code: 'invalid-request', message: expect.stringContaining('threads') } });
    const notJson = await send('/api/call/getSettings', { method: 'POST', headers: { ...cookie(), 'content-type': 'application/json' }, body: '{' });
    expect(JSON.parse(notJson.body)).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
    expect((await send('/api/call/getSettings', { method: 'POST', headers: { ...cookie(), 'content-type': 'text/plain' }, body: '{}' })).status).toBe(415);
    expect((await send('/api/call/getSettings', { headers: cookie() })).status).toBe(405);
    const huge = await send('/api/call/getSettings', {
      method: 'POST',
      headers: { ...cookie(), 'content-type': 'application/json' },
      body: JSON.stringify({ args: ['x'.repeat(MAX_BODY_BYTES + 1)] }),
    }).catch(() => ({ status: 413 }));
    expect(huge.status).toBe(413);
  });

  it('refuses foreign Host and Origin headers (DNS rebinding, cross-site requests)', async () => {
    expect((await send('/', { headers: { ...cookie(), host: `evil.example:${server.port}` } })).status).toBe(421);
    expect((await call('getSettings', [], { ...cookie(), origin: 'http://evil.example' })).status).toBe(403);
    expect((await call('getSettings', [], { ...cookie(), origin: `http://127.0.0.1:${server.port}` })).status).toBe(200);
  });

  it('serves data-folder images but nothing outside the data folder', async () => {
    const image = await send('/files/results/one.png', { headers: cookie() });
    expect(image.status).toBe(200);
    expect(image.headers['content-type']).toBe('image/png');
    expect(image.body).toBe('png bytes');
    expect((await send('/files/%2e%2e/%2e%2e/etc/passwd.png', { headers: cookie() })).status).toBe(403);
    expect((await send('/files/results/escape.png', { headers: cookie() })).status).toBe(403);
    expect((await send('/files/library.sqlite', { headers: cookie() })).status).toBe(403);
    expect((await send('/%2e%2e/package.json', { headers: cookie() })).status).toBe(403);
  });

  it('streams events over a WebSocket that requires the token', async () => {
    const url = `ws://127.0.0.1:${server.port}/api/events`;
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(url);
      ws.on('unexpected-response', (_req, res) => resolve(`status ${res.statusCode}`));
      ws.on('error', (error) => resolve(`error ${error.message}`));
      ws.on('open', () => resolve('open'));
    });
    expect(refused).toMatch(/401/);

    const foreignOrigin = await new Promise<string>((resolve) => {
      const ws = new WebSocket(url, { headers: cookie(), origin: 'http://evil.example' });
      ws.on('unexpected-response', (_req, res) => resolve(`status ${res.statusCode}`));
      ws.on('error', (error) => resolve(`error ${error.message}`));
      ws.on('open', () => resolve('open'));
    });
    expect(foreignOrigin).toMatch(/401/);

    const ws = new WebSocket(url, { headers: cookie() });
    await new Promise((resolve, reject) => ws.on('open', resolve).on('error', reject));
    const received = new Promise<unknown>((resolve) => ws.once('message', (data) => resolve(JSON.parse(String(data)))));
    await call('updateSettings', [{ theme: 'dark' }]);
    expect(await received).toMatchObject({ event: 'settingsChanged', payload: { theme: 'dark' } });
    ws.close();
  });

  it('listens on loopback only: a non-loopback address of this machine is refused', async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((address) => address && !address.internal && address.family === 'IPv4');
    expect(external, 'this test needs a non-loopback IPv4 interface').toBeDefined();
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({ host: external!.address, port: server.port });
      socket.on('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(outcome).toBe('ECONNREFUSED');
  });
});
