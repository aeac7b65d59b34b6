import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statfsSync } from 'node:fs';
import { dispatchCall } from '../../main/api/dispatch';
import { openStudio, type Studio } from '../../main/api/studio';
import { DEFAULT_SETTINGS } from '../../main/library/settings-store';
import { makeTempDir } from '../helpers/temp-dir';

let dir: ReturnType<typeof makeTempDir>;
let studio: Studio;

beforeAll(async () => {
  dir = makeTempDir();
  studio = await openStudio({ dataDir: dir.path, mode: 'cli' });
});
afterAll(async () => {
  await studio.close();
  dir.remove();
});

describe('dispatchCall', () => {
  it('calls a known method with valid arguments', async () => {
    expect(await dispatchCall(studio.api, 'getSettings', [])).toEqual({ ok: true, value: DEFAULT_SETTINGS });
    expect(await dispatchCall(studio.api, 'getLibraryCounts', undefined)).toEqual({
      ok: true,
      // The bundled demo model is registered in every library.
      value: { subjects: 0, photos: 0, generations: 0, models: 1 },
    });
  });

  it('measures the data folder: its path, sizes and the free space on its disk', async () => {
    const outcome = await dispatchCall(studio.api, 'getDataFolder', []);
    expect(outcome.ok).toBe(true);
    const info = (outcome as { value: { path: string; sizeBytes: number; databaseBytes: number; freeBytes: number } }).value;
    expect(info.path).toBe(dir.path);
    expect(info.databaseBytes).toBeGreaterThan(0);
    expect(info.sizeBytes).toBeGreaterThanOrEqual(info.databaseBytes);
    // The disk's own figure, read independently (it moves a little as other processes write).
    const disk = statfsSync(dir.path);
    expect(Math.abs(info.freeBytes - disk.bavail * disk.bsize)).toBeLessThan(512 * 1024 * 1024);
  });

  it.each([['deleteEverything'], ['__proto__'], ['constructor'], ['toString'], [42], [null]])('refuses the unknown method %j', async (method) => {
    const outcome = await dispatchCall(studio.api, method, []);
    expect(outcome).toMatchObject({ ok: false, error: { code: 'unknown-method' } });
  });

  it.each([
    ['a wrong type', 'updateSettings', [{ defaultSteps: 'many' }], /defaultSteps/],
    ['an out-of-range number', 'updateSettings', [{ defaultSteps: 0 }], /steps must be at least 1/],
    ['an unknown key', 'updateSettings', [{ theme: 'dark', admin: true }], /admin/],
    ['an unknown enum value', 'updateSettings', [{ device: 'quantum' }], /device/],
    ['a missing argument', 'listSubjects', [], /Invalid request to listSubjects/],
    ['an extra argument', 'getSettings', [1], /Invalid request to getSettings/],
    ['arguments that are not a list', 'listSubjects', { search: 'x' }, /Invalid request/],
    ['an unsafe backend name', 'checkRuntime', [{ backend: '../../etc' }], /backend must be a short lower-case name/],
    ['a non-integer subject id', 'listGenerations', [{ subjectId: 1.5 }], /subjectId/],
  ])('rejects %s with a message naming the problem', async (_label, method, args, message) => {
    const outcome = await dispatchCall(studio.api, method, args);
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) {
      expect(outcome.error.code).toBe('invalid-request');
      expect(outcome.error.message).toMatch(message);
    }
  });

  it('does not apply a rejected update', async () => {
    await dispatchCall(studio.api, 'updateSettings', [{ theme: 'dark', defaultSteps: -3 }]);
    expect((await studio.api.getSettings()).theme).toBe('system');
  });

  it('passes a user-facing error code through', async () => {
    expect(await dispatchCall(studio.api, 'cancelJob', [{ id: 'no-such-job' }])).toEqual({
      ok: false,
      error: { code: 'not-found', message: 'No job with id no-such-job.' },
    });
  });
});
