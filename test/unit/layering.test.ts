import { ESLint } from 'eslint';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { LAYERING_RULES } from '../../tools/eslint/layering-rule.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: repo });
});

/** The `local/layering` rows a piece of code breaks, as `[row]` tags, after failing on any parse error. */
async function layeringViolations(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(repo, file) });
  const messages = result?.messages ?? [];
  const fatal = messages.filter((m) => m.fatal);
  expect(fatal, `parse errors in the sample for ${file}`).toEqual([]);
  return messages.filter((m) => m.ruleId === 'local/layering').map((m) => /^\[([\w-]+)\]/.exec(m.message)?.[1] ?? m.message);
}

interface Case {
  file: string;
  code: string;
  rows: string[];
}

const VIOLATIONS: Case[] = [
  { file: 'main/engine/graph/x.ts', code: "import { readFileSync } from 'node:fs';", rows: ['pure-layers'] },
  { file: 'main/engine/nets/x.ts', code: "import path from 'path';", rows: ['pure-layers'] },
  { file: 'main/engine/tokenizers/x.ts', code: "import { app } from 'electron';", rows: ['pure-layers', 'electron-in-shell-only'] },
  { file: 'main/engine/schedulers/x.ts', code: "import Database from 'better-sqlite3';", rows: ['pure-layers'] },
  { file: 'main/engine/graph/x.ts', code: "import sharp from 'sharp';", rows: ['pure-layers'] },
  { file: 'main/engine/graph/x.ts', code: "import * as ort from 'onnxruntime-node';", rows: ['pure-layers', 'onnxruntime-in-ort-host-only'] },
  { file: 'main/engine/graph/x.ts', code: "import { openDatabase } from '../../library/database';", rows: ['pure-layers', 'engine-imports-downward'] },
  { file: 'main/engine/graph/x.ts', code: "export { createHost } from '../runtime/ort-host';", rows: ['pure-layers'] },
  { file: 'main/engine/nets/x.ts', code: "export * from '../../jobs/job-queue';", rows: ['pure-layers', 'engine-imports-downward'] },
  // The engine is the bottom of main/: what it shares with the layers above lives in the engine.
  { file: 'main/engine/runtime/x.ts', code: "import type { BackendInfo } from '../../api/contract';", rows: ['engine-imports-downward'] },
  { file: 'main/engine/pipelines/x.ts', code: "import { loadModelFolder } from '../../models/model-folder';", rows: ['engine-imports-downward'] },
  { file: 'main/engine/weights/x.ts', code: "import { openDatabase } from '../../library/database';", rows: ['engine-imports-downward'] },
  { file: 'main/engine/providers/x.ts', code: "import { readFileSync } from 'node:fs';", rows: ['pure-layers'] },
  { file: 'main/engine/nets/x.ts', code: "const fs = require('fs');", rows: ['pure-layers'] },
  { file: 'main/engine/nets/x.ts', code: "export const load = () => import('node:worker_threads');", rows: ['pure-layers'] },
  { file: 'main/engine/nets/x.ts', code: 'export const load = (name: string) => import(name);', rows: ['pure-layers'] },
  { file: 'main/api/contract.ts', code: "import { z } from 'zod';", rows: ['contract-imports-nothing'] },
  { file: 'main/api/contract.ts', code: "import { homedir } from 'node:os';", rows: ['pure-layers', 'contract-imports-nothing'] },
  { file: 'main/api/x.ts', code: "import * as ort from 'onnxruntime-node';", rows: ['onnxruntime-in-ort-host-only'] },
  { file: 'main/engine/runtime/ort-worker.ts', code: "import type { Tensor } from 'onnxruntime-node';", rows: ['onnxruntime-in-ort-host-only'] },
  { file: 'main/serve/x.ts', code: "const ort = await import('onnxruntime-node');", rows: ['onnxruntime-in-ort-host-only'] },
  { file: 'main/library/x.ts', code: "import { app } from 'electron';", rows: ['electron-in-shell-only'] },
  { file: 'main/cli/x.ts', code: "const { app } = require('electron');", rows: ['electron-in-shell-only'] },
  { file: 'renderer/src/x.ts', code: "import { x } from '../../main/library/store';", rows: ['renderer-sandbox'] },
  { file: 'renderer/src/x.ts', code: "import type { Studio } from '../../main/api/studio';", rows: ['renderer-sandbox'] },
  { file: 'renderer/src/x.ts', code: "import { readFile } from 'node:fs/promises';", rows: ['renderer-sandbox'] },
  { file: 'renderer/src/x.ts', code: "import { ipcRenderer } from 'electron';", rows: ['electron-in-shell-only', 'renderer-sandbox'] },
  { file: 'renderer/src/x.ts', code: "import debounce from 'lodash/debounce';", rows: ['renderer-sandbox'] },
  { file: 'renderer/src/x.ts', code: 'export const load = (name: string) => import(name);', rows: ['renderer-sandbox'] },
  { file: 'renderer/src/components/X.svelte', code: "<script lang=\"ts\">\n  import { readFileSync } from 'node:fs';\n</script>\n", rows: ['renderer-sandbox'] },
  { file: 'renderer/src/state/x.svelte.ts', code: "import { spawn } from 'node:child_process';", rows: ['renderer-sandbox'] },
  { file: 'preload/x.ts', code: "import { readFileSync } from 'node:fs';", rows: ['preload-narrow'] },
  { file: 'preload/x.ts', code: "import { dispatchCall } from '../main/api/dispatch';", rows: ['preload-narrow'] },
  { file: 'preload/x.ts', code: "import { z } from 'zod';", rows: ['preload-narrow'] },
];

const ALLOWED: Case[] = [
  { file: 'renderer/src/x.ts', code: "import type { StudioApi } from '../../main/api/contract';", rows: [] },
  // The renderer may also use the contract's name tables: the contract imports nothing, so bundling it is harmless.
  { file: 'renderer/src/x.ts', code: "import { STUDIO_METHODS } from '../../main/api/contract';", rows: [] },
  { file: 'renderer/src/contract.ts', code: "export * from '../../main/api/contract';", rows: [] },
  { file: 'renderer/src/x.ts', code: "import { mount } from 'svelte';\nimport type { Attachment } from 'svelte/attachments';\nimport { format } from './util/format';", rows: [] },
  { file: 'renderer/src/components/X.svelte', code: "<script lang=\"ts\">\n  import Icon from './icons/Icon.svelte';\n  import type { JobSummary } from '../contract';\n</script>\n", rows: [] },
  { file: 'main/engine/runtime/ort-host.ts', code: "import * as ort from 'onnxruntime-node';", rows: [] },
  { file: 'main/electron/main.ts', code: "import { app } from 'electron';\nimport { readFile } from 'node:fs/promises';", rows: [] },
  { file: 'preload/index.ts', code: "import { contextBridge } from 'electron';\nimport { IPC_CHANNELS } from '../main/api/contract';\nimport { createStudioBridge } from './bridge';", rows: [] },
  { file: 'main/engine/graph/x.ts', code: "import { tensor } from './tensor';\nimport type { NetPlacement } from '../providers/provider-types';\nimport { attention } from '../nets/attention';\nimport protobuf from 'protobufjs';", rows: [] },
  { file: 'main/api/contract.ts', code: "export type { BackendInfo } from '../engine/providers/provider-types';", rows: [] },
  { file: 'main/engine/weights/x.ts', code: "import { writeFileAtomic } from '../../files/atomic-write';\nimport { readFileSync } from 'node:fs';", rows: [] },
  { file: 'main/models/x.ts', code: "import { requireComponent } from '../engine/pipelines/model-folder';", rows: [] },
  { file: 'main/library/x.ts', code: "import Database from 'better-sqlite3';\nimport { join } from 'node:path';", rows: [] },
  { file: 'main/engine/imaging/x.ts', code: "import sharp from 'sharp';", rows: [] },
];

describe('local/layering', () => {
  it.each(VIOLATIONS)('refuses in $file: $code', async ({ file, code, rows }) => {
    expect((await layeringViolations(file, code)).sort()).toEqual([...rows].sort());
  });

  it.each(ALLOWED)('allows in $file: $code', async ({ file, code }) => {
    expect(await layeringViolations(file, code)).toEqual([]);
  });

  it('has a failing case for every row of the table', () => {
    const exercised = new Set(VIOLATIONS.flatMap((c) => c.rows));
    expect(LAYERING_RULES.map((row) => row.name).filter((name) => !exercised.has(name))).toEqual([]);
  });

  it('names the row, the import and the reason in its message', async () => {
    const [result] = await eslint.lintText("import { readFileSync } from 'node:fs';", { filePath: join(repo, 'main/engine/graph/x.ts') });
    const message = result?.messages.find((m) => m.ruleId === 'local/layering')?.message ?? '';
    expect(message).toContain('[pure-layers]');
    expect(message).toContain("'node:fs'");
    expect(message).toContain('main/engine/graph/x.ts');
    expect(message).toContain('no Node built-ins');
  });
});
