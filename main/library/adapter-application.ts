/**
 * Library adapters in a generation: the subject's fine-tune at a strength s and imported style LoRAs,
 * each at its own. The fine-tune contributes its LoRA at scale s and moves the subject embedding by
 *   e = e_photos + s·(e_trained − e_initial)
 * where e_initial is the photos' mean it was trained from: s = 0 is the zero-shot embedding exactly,
 * s = 1 the trained one (while the photos are unchanged). All LoRAs run as one (lora-combine.ts). The
 * generation job and the gallery's reproduce both go through `applyAdapters`, so a recipe gives the
 * same bits again.
 */
import type { Database } from 'better-sqlite3';
import type { GenerationRequest, ModelSummary, SubjectDetail } from '../api/contract';
import { StudioError } from '../api/studio-error';
import { AdapterStore, type AdapterRecord } from './adapter-store';
import type { SubjectEmbedding } from '../engine/pipelines/subject-embedding';
import { requireComponent, type ModelFolder } from '../models/model-folder';
import { loraTargets, readLoraFile, type LoraWeights } from '../engine/weights/lora-weights';
import { combineLoras, type ScaledLora } from '../engine/weights/lora-combine';
import type { Recipe } from '../gallery/recipe';

export interface PlannedAdapter {
  adapter: AdapterRecord;
  scale: number;
}

export interface AppliedAdapters {
  embedding: SubjectEmbedding;
  lora: ScaledLora | null;
  recipeFields: Pick<Recipe, 'finetune' | 'styles'>;
}

/** Looks up and checks the request's adapters when the job is queued (problems the user can fix come back at once). */
export function planAdapters(request: GenerationRequest, subject: SubjectDetail, model: ModelSummary, store: AdapterStore | undefined): { finetune?: PlannedAdapter; styles?: PlannedAdapter[] } {
  if (request.finetune === undefined && (request.styles ?? []).length === 0) return {};
  if (!store) throw new StudioError('unavailable', 'Adapters are not available here.');
  const find = (id: number, kind: AdapterRecord['kind']) => {
    const adapter = store.get(id);
    if (!adapter || adapter.kind !== kind) throw new StudioError('not-found', `No ${kind === 'finetune' ? 'fine-tune' : 'style adapter'} with id ${id}: it may have been deleted.`);
    if (model.hash !== null && adapter.modelHash !== model.hash) throw new StudioError('conflict', `“${adapter.name}” was made for the model ${adapter.modelName}, not ${model.name}: choose that model, or fine-tune again for this one.`);
    return adapter;
  };
  const planned: { finetune?: PlannedAdapter; styles?: PlannedAdapter[] } = {};
  if (request.finetune !== undefined) {
    const adapter = find(request.finetune.adapterId, 'finetune');
    if (adapter.subjectId !== subject.id) throw new StudioError('invalid-request', `“${adapter.name}” is a fine-tune of another subject, not of ${subject.name}.`);
    if (request.mix !== undefined) throw new StudioError('invalid-request', 'A fine-tune cannot be combined with mixing in a second subject yet: turn one of them off.');
    planned.finetune = { adapter, scale: request.finetune.scale };
  }
  if (request.styles && request.styles.length > 0) planned.styles = request.styles.map((use) => ({ adapter: find(use.adapterId, 'style'), scale: use.scale }));
  return planned;
}

/** The embedding and LoRA a plan's adapters give, and how the recipe names them. */
export function applyAdapters(plan: { finetune?: PlannedAdapter | undefined; styles?: PlannedAdapter[] | undefined }, folder: ModelFolder, modelHash: string, photos: SubjectEmbedding): AppliedAdapters {
  const targets = loraTargets(requireComponent(folder, 'unet').config);
  const loras: ScaledLora[] = [];
  const read = ({ adapter }: PlannedAdapter): LoraWeights => {
    if (adapter.modelHash !== modelHash) throw new StudioError('conflict', `“${adapter.name}” was made for the model ${adapter.modelName}, which has changed or is not the one chosen.`);
    return readLoraFile(adapter.lora, targets, { file: `“${adapter.name}”` }).lora;
  };
  let embedding = photos;
  if (plan.finetune) {
    const { adapter, scale } = plan.finetune;
    loras.push({ weights: read(plan.finetune), scale });
    embedding = movedEmbedding(photos, adapter, scale);
  }
  for (const style of plan.styles ?? []) loras.push({ weights: read(style), scale: style.scale });
  return {
    embedding,
    lora: combineLoras(loras),
    recipeFields: {
      ...(plan.finetune ? { finetune: { sha256: plan.finetune.adapter.sha256, scale: plan.finetune.scale, name: plan.finetune.adapter.name } } : {}),
      ...(plan.styles && plan.styles.length > 0 ? { styles: plan.styles.map(({ adapter, scale }) => ({ sha256: adapter.sha256, scale, name: adapter.name })) } : {}),
    },
  };
}

/** e + s·(trained − initial), in float32; s = 0 returns e itself. */
function movedEmbedding(photos: SubjectEmbedding, adapter: AdapterRecord, scale: number): SubjectEmbedding {
  const learned = adapter.embedding;
  if (!learned) throw new StudioError('internal', `“${adapter.name}” has no trained embedding.`);
  if (learned.trained.length !== photos.data.length) throw new StudioError('conflict', `“${adapter.name}” has an embedding of another size than this model's.`);
  if (scale === 0) return photos;
  const f = Math.fround;
  const data = photos.data.map((e, i) => f(e + f(scale * f((learned.trained[i] as number) - (learned.initial[i] as number)))));
  return { dims: photos.dims, data };
}

/** The recipe's library adapters that this library does not hold (by content hash), named for the user. */
export function missingRecipeAdapters(db: Database, recipe: Pick<Recipe, 'finetune' | 'styles'>): string[] {
  const store = new AdapterStore(db);
  const wanted = [...(recipe.finetune ? [{ ...recipe.finetune, what: 'the fine-tune' }] : []), ...(recipe.styles ?? []).map((s) => ({ ...s, what: 'the style adapter' }))];
  return wanted.filter((a) => a.scale !== 0 && store.findBySha256(a.sha256) === null).map((a) => `${a.what} “${a.name}” (sha256 ${a.sha256.slice(0, 12)}…)`);
}

/** A recipe's library adapters looked up by hash, as a plan (throws naming the first one missing). */
export function recipeAdapterPlan(db: Database, recipe: Pick<Recipe, 'finetune' | 'styles'>): { finetune?: PlannedAdapter; styles?: PlannedAdapter[] } {
  const missing = missingRecipeAdapters(db, recipe);
  if (missing.length > 0) throw new StudioError('not-found', `This image was made with ${missing.join(' and ')}, which is no longer in the library: it cannot be made again without it.`);
  const store = new AdapterStore(db);
  const plan: { finetune?: PlannedAdapter; styles?: PlannedAdapter[] } = {};
  if (recipe.finetune && recipe.finetune.scale !== 0) plan.finetune = { adapter: store.findBySha256(recipe.finetune.sha256) as AdapterRecord, scale: recipe.finetune.scale };
  const styles = (recipe.styles ?? []).filter((s) => s.scale !== 0);
  if (styles.length > 0) plan.styles = styles.map((s) => ({ adapter: store.findBySha256(s.sha256) as AdapterRecord, scale: s.scale }));
  return plan;
}
