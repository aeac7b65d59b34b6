import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDataFile } from '../../main/files/data-files';
import { makeTempDir } from '../helpers/temp-dir';

let data: ReturnType<typeof makeTempDir>;
let outside: ReturnType<typeof makeTempDir>;

beforeEach(() => {
  data = makeTempDir('blip-data-');
  outside = makeTempDir('blip-outside-');
  mkdirSync(join(data.path, 'photos/ab'), { recursive: true });
  writeFileSync(join(data.path, 'photos/ab/cat.png'), 'png');
  writeFileSync(join(data.path, 'library.sqlite'), 'db');
  writeFileSync(join(outside.path, 'secret.png'), 'secret');
  symlinkSync(join(outside.path, 'secret.png'), join(data.path, 'photos/escape.png'));
  symlinkSync(outside.path, join(data.path, 'linked-dir'));
  symlinkSync(join(data.path, 'photos/ab/cat.png'), join(data.path, 'photos/inside.png'));
});
afterEach(() => {
  data.remove();
  outside.remove();
});

describe('resolveDataFile', () => {
  it('serves an image inside the data folder with its content type', async () => {
    const result = await resolveDataFile(data.path, 'photos/ab/cat.png');
    expect(result).toMatchObject({ ok: true, contentType: 'image/png' });
    expect(result.ok && result.path.endsWith(join('photos', 'ab', 'cat.png'))).toBe(true);
  });

  it('follows a symlink that stays inside the data folder', async () => {
    expect(await resolveDataFile(data.path, 'photos/inside.png')).toMatchObject({ ok: true });
  });

  it.each([
    ['../' + 'x.png', 403],
    ['photos/../../x.png', 403],
    ['%2e%2e/%2e%2e/etc/passwd.png', 403],
    ['photos/%2e%2e/%2e%2e/x.png', 403],
    ['/etc/hosts.png', 403],
    ['%2Fetc%2Fhosts.png', 403],
    ['C:/Windows/win.png', 403],
    ['photos\\..\\..\\x.png', 400],
    ['photos/ab/cat.png%00.png', 400],
    ['%E0%A4%A', 400],
    ['', 400],
    ['photos//ab/cat.png', 403],
  ])('refuses %j with status %i', async (path, status) => {
    expect(await resolveDataFile(data.path, path)).toMatchObject({ ok: false, status });
  });

  it('refuses symlinks that lead out of the data folder', async () => {
    expect(await resolveDataFile(data.path, 'photos/escape.png')).toMatchObject({ ok: false, status: 403 });
    expect(await resolveDataFile(data.path, 'linked-dir/secret.png')).toMatchObject({ ok: false, status: 403 });
  });

  it('never serves files that are not images, such as the database', async () => {
    expect(await resolveDataFile(data.path, 'library.sqlite')).toMatchObject({ ok: false, status: 403 });
  });

  it('answers 404 for a missing file and for a folder', async () => {
    expect(await resolveDataFile(data.path, 'photos/none.png')).toMatchObject({ ok: false, status: 404 });
    mkdirSync(join(data.path, 'dir.png'));
    expect(await resolveDataFile(data.path, 'dir.png')).toMatchObject({ ok: false, status: 404 });
  });
});
