/**
 * Text conditioning for the UNet, as BlipDiffusionPipeline builds it:
 * - conditional: the repeated prompt "a {target} {prompt}, …" (cut to 77 − Q tokens) through the
 *   context CLIP encoder, with the Q subject embeddings spliced in at ctx_begin_pos;
 * - unconditional: the negative prompt padded to 77 tokens through the plain encoder (no subject).
 */
import { ClipTokenizer } from '../tokenizers/clip-bpe';
import { parseBlipDiffusionIndex, parseBlipQFormerModelConfig, parseClipTextConfig } from '../nets/configs';
import { buildClipTextGraph, buildContextClipTextGraph, CLIP_TEXT_INPUTS, CLIP_TEXT_OUTPUTS, clipTextGraphKey, contextClipTextGraphKey } from '../nets/clip-text-encoder';
import { requireComponent, type ModelFolder } from './model-folder';
import { buildBlipPrompt, tokenizeBlipPrompts } from './blip-prompt';
import { componentCatalog, runNetOnce, type EngineContext } from './engine-context';
import { readClipTokenizerFiles, type SubjectEmbedding } from './subject-embedding';

export interface TextEmbedding {
  /** [1, max_position_embeddings, hidden] */
  dims: [1, number, number];
  data: Float32Array;
}

export interface PromptRequest {
  model: ModelFolder;
  prompt: string;
  targetSubject: string;
  subjectEmbedding: SubjectEmbedding;
  promptStrength?: number;
  promptReps?: number;
}

export interface PromptTokens {
  condIds: number[];
  uncondIds: number[];
}

/** The token ids of both branches; throws the negative-prompt-too-long error before any model runs. */
export function tokenizePrompts(model: ModelFolder, request: { prompt: string; targetSubject: string; negativePrompt: string; promptStrength?: number; promptReps?: number }): PromptTokens {
  const textConfig = parseClipTextConfig(requireComponent(model, 'text_encoder').config);
  const queryTokens = parseBlipQFormerModelConfig(requireComponent(model, 'qformer').config).numQueryTokens;
  const clip = ClipTokenizer.fromFiles(readClipTokenizerFiles(model));
  return tokenizeBlipPrompts(clip, {
    prompt: request.prompt,
    targetSubject: request.targetSubject,
    negativePrompt: request.negativePrompt,
    ...(request.promptStrength !== undefined ? { promptStrength: request.promptStrength } : {}),
    ...(request.promptReps !== undefined ? { promptReps: request.promptReps } : {}),
    maxPositionEmbeddings: textConfig.maxPositionEmbeddings,
    queryTokenCount: queryTokens,
  });
}

export async function encodePrompt(context: EngineContext, request: PromptRequest): Promise<TextEmbedding> {
  const textEncoder = requireComponent(request.model, 'text_encoder');
  const queryTokenCount = parseBlipQFormerModelConfig(requireComponent(request.model, 'qformer').config).numQueryTokens;
  const { ctxBeginPos } = parseBlipDiffusionIndex(request.model.index);
  const { condIds } = tokenizePrompts(request.model, { ...request, negativePrompt: '' });
  const [, tokens, hidden] = request.subjectEmbedding.dims;
  if (tokens !== queryTokenCount) throw new Error(`the subject embedding has ${tokens} tokens; this model's Q-Former makes ${queryTokenCount}`);

  const bound = await componentCatalog(context, textEncoder);
  const options = { queryTokenCount, ctxBeginPos };
  const outputs = await runNetOnce(
    context,
    'The text encoder (prompt with subject)',
    bound,
    {
      forKernels: (kernels) => ({
        cacheKey: contextClipTextGraphKey(textEncoder.config, bound.catalog, { ...options, ...kernels }),
        build: () => buildContextClipTextGraph(textEncoder.config, bound.catalog, { ...options, ...kernels }),
      }),
    },
    {
      [CLIP_TEXT_INPUTS.inputIds]: { type: 'int64', dims: [1, condIds.length], data: BigInt64Array.from(condIds, BigInt) },
      [CLIP_TEXT_INPUTS.ctxEmbeddings]: { type: 'float32', dims: [1, tokens, hidden], data: request.subjectEmbedding.data },
    },
  );
  return lastHiddenState(outputs);
}

export async function encodeNegativePrompt(context: EngineContext, model: ModelFolder, negativePrompt: string): Promise<TextEmbedding> {
  const textEncoder = requireComponent(model, 'text_encoder');
  const { uncondIds } = tokenizePrompts(model, { prompt: '', targetSubject: '', negativePrompt });
  const bound = await componentCatalog(context, textEncoder);
  const outputs = await runNetOnce(
    context,
    'The text encoder (negative prompt)',
    bound,
    {
      forKernels: (kernels) => ({
        cacheKey: clipTextGraphKey(textEncoder.config, bound.catalog, kernels),
        build: () => buildClipTextGraph(textEncoder.config, bound.catalog, kernels),
      }),
    },
    { [CLIP_TEXT_INPUTS.inputIds]: { type: 'int64', dims: [1, uncondIds.length], data: BigInt64Array.from(uncondIds, BigInt) } },
  );
  return lastHiddenState(outputs);
}

function lastHiddenState(outputs: Awaited<ReturnType<typeof runNetOnce>>): TextEmbedding {
  const state = outputs[CLIP_TEXT_OUTPUTS.lastHiddenState];
  if (!state) throw new Error('the text encoder graph returned no last_hidden_state');
  return { dims: state.dims as [1, number, number], data: state.data as Float32Array };
}

export { buildBlipPrompt };
