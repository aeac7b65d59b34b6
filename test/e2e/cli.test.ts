import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { requireBuild, runCli } from '../helpers/built-app';
import { LATEST_SCHEMA_VERSION } from '../../main/library/migrations';
import { makeTempDir } from '../helpers/temp-dir';

let data: ReturnType<typeof makeTempDir>;
beforeAll(() => {
  requireBuild();
  data = makeTempDir('blip-cli-');
});
afterAll(() => data.remove());

describe('CLI', () => {
  it('info --json reports versions, the data folder, backends and library counts', () => {
    const result = runCli(['--data-dir', data.path, 'info', '--json']);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.app).toMatchObject({ appName: 'BLIP Studio', mode: 'cli', dataDir: data.path, electronVersion: null, schemaVersion: LATEST_SCHEMA_VERSION });
    expect(report.app.onnxruntimeVersion).toMatch(/^1\.30\./);
    expect(report.app.sqliteVersion).toMatch(/^3\./);
    expect(report.backends).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'cpu', available: true, bundled: true })]));
    // Every library gets the bundled demo model.
    expect(report.library).toEqual({ subjects: 0, photos: 0, generations: 0, models: 1 });
    expect(existsSync(join(data.path, 'library.sqlite'))).toBe(true);
  });

  it('info prints a readable summary', () => {
    const result = runCli(['--data-dir', data.path, 'info']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`data folder   ${data.path}`);
    expect(result.stdout).toMatch(/Execution providers\n\s+✓ cpu/);
    expect(result.stdout).toContain('0 subjects, 0 photos, 0 generations, 1 models');
  });

  it('has --help for the program and for every command', () => {
    const top = runCli(['--help']);
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/Usage: blip-studio/);
    expect(top.stdout).toMatch(/info \[options\]\s+Show versions/);
    expect(top.stdout).toMatch(/bench \[options\]\s+Measure the runtime/);
    expect(runCli(['bench', '--help']).stdout).toMatch(/--quick/);
    const info = runCli(['info', '--help']);
    expect(info.status).toBe(0);
    expect(info.stdout).toMatch(/--json/);
    expect(info.stdout).toMatch(/--data-dir/);
  });

  it('bench writes JSON results with machine info', () => {
    const out = join(data.path, 'bench');
    const result = runCli(['--data-dir', data.path, 'bench', '--quick', '--out', out]);
    expect(result.status).toBe(0);
    const files = readdirSync(out).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    const bench = JSON.parse(readFileSync(join(out, files[0]!), 'utf8'));
    expect(bench.machine).toMatchObject({ cpuCount: expect.any(Number), onnxruntime: expect.stringMatching(/^1\.30\./), platform: process.platform });
    expect(bench.results.smokeGraphCpu.maxAbsError).toBeLessThanOrEqual(1e-5);
    expect(bench.results.matMulChainCpu.gflopsPerSecond).toBeGreaterThan(0);
    expect(bench.results.mainThreadLag.ratioLoadedToIdle).toEqual(expect.any(Number));
    expect(result.stdout).toContain(`written to ${join(out, files[0]!)}`);
  });

  it('fails clearly on an unknown command', () => {
    const result = runCli(['frobnicate']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/unknown command 'frobnicate'/);
  });

  it('refuses a library from a newer version without touching it', async () => {
    const newer = makeTempDir('blip-cli-newer-');
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(newer.path, 'library.sqlite'));
    db.exec("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT ''); INSERT INTO schema_version (version, name) VALUES (99, 'future')");
    db.close();
    const result = runCli(['--data-dir', newer.path, 'info']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`newer BLIP Studio (schema version 99; this version knows up to ${LATEST_SCHEMA_VERSION})`);
    newer.remove();
  });
});
