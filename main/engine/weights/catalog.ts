/**
 * Adapts a component's weight files to the nets' `WeightCatalog`: ONNX external data must be given
 * relative to one folder (ORT refuses absolute paths and `..`), so every file of a component must sit
 * in the same folder, which becomes the session's external-data folder.
 */
import { basename, dirname } from 'node:path';
import type { WeightCatalog, WeightEntry } from '../nets/weight-catalog';
import type { ComponentWeights } from './component-weights';

export interface BoundCatalog {
  catalog: WeightCatalog;
  /** The folder the catalog's relative file names are resolved against. */
  externalDataFolder: string;
}

export function catalogOf(weights: ComponentWeights): BoundCatalog {
  const folders = new Set(weights.files.map((file) => dirname(file)));
  if (folders.size !== 1) throw new Error(`the weight files of one component must share a folder, found: ${[...folders].join(', ')}`);
  const entries = new Map<string, WeightEntry>();
  for (const [name, entry] of weights.tensors) {
    entries.set(name, { dtype: entry.dtype, shape: entry.shape, file: basename(entry.file), offset: entry.offset, byteLength: entry.byteLength });
  }
  const names = [...entries.keys()];
  return {
    catalog: { names: () => names, lookup: (name) => entries.get(name) },
    externalDataFolder: [...folders][0]!,
  };
}
