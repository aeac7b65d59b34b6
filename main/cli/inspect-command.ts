import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkParameters, isCleanReport } from '../engine/nets/implied-parameters';
import { impliedComponentParameters, queryTokenCountOf } from '../engine/nets/component-checks';
import { parseBlipDiffusionIndex } from '../engine/nets/configs';
import { elementCount } from '../engine/io/npy';
import { inspectModel, type ComponentReport, type InspectReport } from '../models/model-check';

/**
 * The same check without weights, against key/shape lists of real checkpoints (the parity kit's
 * real-shapes/: index.json names each list; each list carries its full config).
 */
export function inspectKeyLists(realShapesDir: string): InspectReport {
  const index = JSON.parse(readFileSync(join(realShapesDir, 'index.json'), 'utf8')) as { components: Record<string, { class: string; weights_file: string }> };
  const lists = Object.entries(index.components).map(([id, entry]) => ({
    id,
    entry,
    json: JSON.parse(readFileSync(join(realShapesDir, `${id}.json`), 'utf8')) as { config_full: unknown; tensors: { name: string; dtype: string; shape: number[] }[] },
  }));
  const qformer = lists.find((l) => l.entry.weights_file.startsWith('qformer/'));
  const pipeline = { ctxBeginPos: parseBlipDiffusionIndex({}).ctxBeginPos, queryTokenCount: qformer ? queryTokenCountOf(qformer.json.config_full) : 16 };
  const components: ComponentReport[] = lists.map(({ id, entry, json }) => {
    const component = entry.weights_file.split('/')[0] ?? id;
    const implied = impliedComponentParameters(component, json.config_full, pipeline);
    return {
      name: id,
      className: entry.class.split('.').pop() ?? entry.class,
      weights: { source: 'key list', files: [], tensors: json.tensors.length, parameters: json.tensors.filter((t) => t.dtype !== 'I64').reduce((sum, t) => sum + elementCount(t.shape), 0) },
      check: implied ? checkParameters(implied, json.tensors) : null,
    };
  });
  return { model: realShapesDir, pipeline: 'real checkpoints (key/shape lists, no weights)', components, ok: components.every((c) => c.check !== null && isCleanReport(c.check)) };
}

export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description('Show a model folder’s components, parameter counts, and whether every tensor its configs imply is present with the right shape (and nothing unused).')
    .option('--model <dir>', 'a BLIP-Diffusion model folder (diffusers layout)')
    .option('--real-shapes <dir>', 'check key/shape lists of real checkpoints instead (e.g. test/fixtures/parity/real-shapes)')
    .option('--json', 'print one JSON object instead of text')
    .action(async (options: { model?: string; realShapes?: string; json?: boolean }, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      if ((options.model === undefined) === (options.realShapes === undefined)) throw new Error('give exactly one of --model or --real-shapes');
      const report = options.realShapes !== undefined ? inspectKeyLists(options.realShapes) : await inspectModel(options.model!, join(dataDir, 'cache'));
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
      if (!report.ok) process.exitCode = 1;
    });
}

function formatCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}

function formatReport(report: InspectReport): string {
  const lines = [`${report.model}`, `  pipeline  ${report.pipeline}`, ''];
  const width = Math.max(16, ...report.components.map((c) => c.name.length + 1));
  for (const c of report.components) {
    const weights = c.weights ? `${formatCount(c.weights.parameters)} parameters in ${c.weights.tensors} tensors (${c.weights.source})` : 'no weights';
    lines.push(`  ${c.name.padEnd(width)} ${c.className.padEnd(28)} ${weights}`);
    if (c.problem !== undefined) lines.push(`  ${''.padEnd(width)} problem: ${c.problem}`);
    if (c.check) {
      const { missing, unused, misshaped } = c.check;
      lines.push(`  ${''.padEnd(width)} check: ${missing.length} missing, ${unused.length} unused, ${misshaped.length} mis-shaped`);
      for (const name of missing) lines.push(`      missing    ${name}`);
      for (const name of unused) lines.push(`      unused     ${name}`);
      for (const m of misshaped) lines.push(`      mis-shaped ${m.name}: ${m.problem}`);
    } else if (c.weights) {
      lines.push(`  ${''.padEnd(width)} check: no network of this release reads it`);
    }
  }
  lines.push('', report.ok ? 'OK: every checked component matches its config.' : 'PROBLEMS: see the lists above.');
  return `${lines.join('\n')}\n`;
}
