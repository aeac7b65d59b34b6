/**
 * The subject embedding: reference photo → BLIP-2 vision tower → Q-Former with the subject's category
 * word → projection layer → the 16 "subject prompt" vectors spliced into the text encoder later
 * (DESIGN §2). Several photos: their (weighted) mean, as LAVIS' forward_ctx_embeddings.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBlipQFormerModelConfig } from '../nets/configs';
import { buildQFormerGraph, QFORMER_INPUTS, QFORMER_OUTPUTS, qformerGraphKey } from '../nets/qformer';
import { parseImageProcessorConfig, preprocessReferenceImage, type PixelTensor } from '../imaging/preprocess';
import { requireComponent, type ModelFolder } from './model-folder';
import { componentCatalog, runNetOnce, type EngineContext } from './engine-context';
import { loadQformerTokenizer } from './qformer-vocab';

export interface SubjectEmbedding {
  /** [1, num_query_tokens, hidden] */
  dims: [1, number, number];
  data: Float32Array;
}

export interface EmbedSubjectRequest {
  model: ModelFolder;
  /** The subject's category word ("dog", "backpack"), as the reference's source_subject_category. */
  subject: string;
  /** A photo file, or already preprocessed pixel values [1, 3, S, S] (for exact comparisons). */
  image: { path: string } | { pixels: PixelTensor };
}

export async function imageProcessorOf(model: ModelFolder) {
  return parseImageProcessorConfig(requireComponent(model, 'image_processor').config);
}

export async function embedSubject(context: EngineContext, request: EmbedSubjectRequest): Promise<SubjectEmbedding> {
  const qformer = requireComponent(request.model, 'qformer');
  const config = parseBlipQFormerModelConfig(qformer.config);
  const { tokenizer } = loadQformerTokenizer({ modelDir: request.model.dir, qformerConfig: qformer.config });
  const { inputIds, attentionMask } = tokenizer.encode(request.subject);

  let pixels: PixelTensor;
  if ('pixels' in request.image) {
    pixels = request.image.pixels;
    const size = config.vision.imageSize;
    const [n, c, h, w] = pixels.dims;
    if (n !== 1 || c !== 3 || h !== size || w !== size) {
      throw new Error(`pixel values must have shape [1, 3, ${size}, ${size}] for this model, got [${pixels.dims.join(', ')}]`);
    }
  } else {
    pixels = await preprocessReferenceImage(request.image.path, await imageProcessorOf(request.model));
  }

  const bound = await componentCatalog(context, qformer);
  const options = { textLength: inputIds.length };
  const outputs = await runNetOnce(
    context,
    'The subject embedding (vision tower + Q-Former)',
    bound,
    {
      forKernels: (kernels) => ({
        cacheKey: qformerGraphKey(qformer.config, bound.catalog, { ...options, ...kernels }),
        build: () => buildQFormerGraph(qformer.config, bound.catalog, { ...options, ...kernels }),
      }),
    },
    {
      [QFORMER_INPUTS.pixelValues]: { type: 'float32', dims: [...pixels.dims], data: pixels.data },
      [QFORMER_INPUTS.inputIds]: { type: 'int64', dims: [1, inputIds.length], data: BigInt64Array.from(inputIds, BigInt) },
      [QFORMER_INPUTS.attentionMask]: { type: 'int64', dims: [1, attentionMask.length], data: BigInt64Array.from(attentionMask, BigInt) },
    },
  );
  const embeds = outputs[QFORMER_OUTPUTS.queryEmbeds];
  if (!embeds) throw new Error('the Q-Former graph returned no query embeddings');
  return { dims: embeds.dims as [1, number, number], data: embeds.data as Float32Array };
}

/** LAVIS' multi-image subject: Σ wᵢ·embeddingᵢ with the weights normalised to sum 1 (equal by default). */
export function meanEmbedding(embeddings: readonly SubjectEmbedding[], weights?: readonly number[]): SubjectEmbedding {
  const first = embeddings[0];
  if (!first) throw new Error('no embeddings to average');
  const w = weights ?? embeddings.map(() => 1);
  if (w.length !== embeddings.length || w.some((x) => !(x >= 0)) || w.every((x) => x === 0)) {
    throw new Error('photo weights must be one non-negative number per photo, not all zero');
  }
  const total = w.reduce((a, b) => a + b, 0);
  const data = new Float32Array(first.data.length);
  embeddings.forEach((embedding, i) => {
    if (embedding.data.length !== data.length) throw new Error('embeddings of different shapes cannot be averaged');
    const weight = w[i]! / total;
    for (let j = 0; j < data.length; j++) data[j]! += weight * embedding.data[j]!;
  });
  return { dims: first.dims, data };
}

/** The CLIP tokenizer files of a model folder (vocab.json + merges.txt). */
export function readClipTokenizerFiles(model: ModelFolder): { vocabJson: string; mergesTxt: string } {
  const dir = requireComponentDir(model, 'tokenizer');
  return { vocabJson: readFileSync(join(dir, 'vocab.json'), 'utf8'), mergesTxt: readFileSync(join(dir, 'merges.txt'), 'utf8') };
}

function requireComponentDir(model: ModelFolder, name: string): string {
  const component = model.components.get(name);
  if (!component) throw new Error(`${model.dir}: the model has no '${name}' component`);
  return component.dir;
}
