import type { Command } from 'commander';
import type { AppInfo, BackendInfo, LibraryCounts } from '../api/contract';
import { openStudio } from '../api/studio';
import { placementNotes } from '../engine/providers/kernel-routing';

export interface InfoReport {
  app: AppInfo;
  backends: BackendInfo[];
  library: LibraryCounts;
}

export function registerInfoCommand(program: Command): void {
  program
    .command('info')
    .description('Show versions, the data folder, the execution providers of this machine and library counts.')
    .option('--json', 'print one JSON object instead of text')
    .action(async (options: { json?: boolean }, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      const studio = await openStudio({ dataDir, mode: 'cli' });
      try {
        const report: InfoReport = {
          app: await studio.api.getAppInfo(),
          backends: await studio.api.listBackends(),
          library: await studio.api.getLibraryCounts(),
        };
        process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatInfo(report));
      } finally {
        await studio.close();
      }
    });
}

/** Where the nets run when this provider is chosen: one quiet line when all run plainly, else each deviation. */
function placementLines(backend: BackendInfo): string[] {
  const notes = placementNotes(backend.nets);
  if (notes.length === 0) return [`      nets: ${backend.nets.map((n) => n.label).join(', ')} run here with fused kernels`];
  return notes.map((note) => `      ${note}`);
}

function formatInfo({ app, backends, library }: InfoReport): string {
  const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  const lines = [
    `${app.appName} ${app.appVersion}`,
    `  data folder   ${app.dataDir} (schema v${app.schemaVersion})`,
    `  node          ${app.nodeVersion}${app.electronVersion ? `, electron ${app.electronVersion}` : ''}`,
    `  onnxruntime   ${app.onnxruntimeVersion}`,
    `  sqlite        ${app.sqliteVersion}`,
    `  machine       ${app.platform}-${app.arch}, ${app.cpuCount} cores, ${gib(app.totalMemoryBytes)} RAM`,
    '',
    'Execution providers',
    ...backends.flatMap((b) => [`  ${b.available ? '✓' : '✗'} ${b.name.padEnd(9)} ${b.label}${b.bundled ? '' : ' (add-on)'} — ${b.note}`, ...placementLines(b)]),
    '',
    'Library',
    `  ${library.subjects} subjects, ${library.photos} photos, ${library.generations} generations, ${library.models} models`,
  ];
  return `${lines.join('\n')}\n`;
}
