/**
 * Several components' weights as one catalog, for a graph that reads more than one component (the
 * ControlNet + UNet denoising step): each part's tensor names get a prefix (so `conv_in.weight` of both
 * stay distinct) and its file locations the component's folder, relative to the graph's external-data
 * folder (the model folder that holds both components).
 */
import type { TensorRequest, WeightCatalog, WeightEntry } from './weight-catalog';

export interface CatalogPart {
  catalog: WeightCatalog;
  /** Prepended to every tensor name, e.g. 'controlnet.' ('' keeps the names). */
  namePrefix: string;
  /** The component's folder inside the external-data folder, e.g. 'controlnet' ('' when the catalog's file names already are relative to it). */
  folder: string;
}

export function catalogUnion(parts: readonly CatalogPart[]): WeightCatalog {
  const owner = (name: string): CatalogPart | undefined =>
    // The longest matching prefix wins, so a '' part never shadows 'controlnet.'.
    [...parts].sort((a, b) => b.namePrefix.length - a.namePrefix.length).find((part) => name.startsWith(part.namePrefix));
  return {
    names: () => parts.flatMap((part) => part.catalog.names().map((name) => `${part.namePrefix}${name}`)),
    lookup: (name: string, request?: TensorRequest): WeightEntry | undefined => {
      const part = owner(name);
      if (!part) return undefined;
      const local = name.slice(part.namePrefix.length);
      const entry = part.catalog.lookup(local, request && { ...request, name: local });
      return entry && { ...entry, file: part.folder ? `${part.folder}/${entry.file}` : entry.file };
    },
  };
}
