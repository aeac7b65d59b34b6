/**
 * Several components' weights read by one graph (ControlNet + UNet, the fine-tune's text encoder +
 * UNet): the graph's external-data folder is the deepest folder holding every component's files, and
 * each catalog's file names are made relative to it.
 */
import { relative, sep } from 'node:path';
import type { WeightCatalog } from '../nets/weight-catalog';
import type { BoundCatalog } from '../weights/catalog';

export function jointCatalogs(parts: readonly BoundCatalog[]): { folder: string; catalogs: WeightCatalog[] } {
  const folder = jointFolder(parts);
  return { folder, catalogs: parts.map((part) => rebase(part, folder)) };
}

function jointFolder(parts: readonly BoundCatalog[]): string {
  const split = parts.map((p) => p.externalDataFolder.split(sep));
  const common: string[] = [];
  for (let i = 0; split.every((s) => i < s.length && s[i] === split[0]![i]); i++) common.push(split[0]![i]!);
  return common.join(sep) || sep;
}

/** The catalog with its file names made relative to `folder` ('/'-separated, as ONNX locations are). */
function rebase(bound: BoundCatalog, folder: string): WeightCatalog {
  const prefix = relative(folder, bound.externalDataFolder).split(sep).filter(Boolean).join('/');
  return {
    names: () => bound.catalog.names(),
    lookup: (name: string) => {
      const entry = bound.catalog.lookup(name);
      return entry && { ...entry, file: prefix ? `${prefix}/${entry.file}` : entry.file };
    },
  };
}
