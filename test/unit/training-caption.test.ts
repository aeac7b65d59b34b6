import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { buildContextClipTextGraph, CLIP_TEXT_INPUTS, CLIP_TEXT_OUTPUTS } from '../../main/engine/nets/clip-text-encoder';
import { parseBlipDiffusionIndex, parseBlipQFormerModelConfig, parseClipTextConfig } from '../../main/engine/nets/configs';
import { captionConditioningFeeds, CaptionTooLongError, tokenizeTrainingCaption, trainingCaption } from '../../main/engine/pipelines/training-caption';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import { ClipTokenizer } from '../../main/engine/tokenizers/clip-bpe';
import { catalogOf } from '../../main/engine/weights/catalog';
import { openComponentWeights } from '../../main/engine/weights/component-weights';
import { FINETUNE_KIT_MODEL, finetuneKitConfig, kitFloat32, kitNpy, KIT_REL_L2_FLOOR, relativeL2 } from '../helpers/finetune-kit';
import { maxAbsDiff } from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { bundleWorkerForTest } from '../helpers/worker-bundle';

const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(join(FINETUNE_KIT_MODEL, path), 'utf8')) as Record<string, unknown>;
const clip = () => ClipTokenizer.fromFiles({ vocabJson: readFileSync(join(FINETUNE_KIT_MODEL, 'tokenizer/vocab.json'), 'utf8'), mergesTxt: readFileSync(join(FINETUNE_KIT_MODEL, 'tokenizer/merges.txt'), 'utf8') });
const config = finetuneKitConfig();
const textConfig = () => readJson('text_encoder/config.json');
const modelFacts = () => ({
  maxPositionEmbeddings: parseClipTextConfig(textConfig()).maxPositionEmbeddings,
  queryTokenCount: parseBlipQFormerModelConfig(readJson('qformer/config.json')).numQueryTokens,
  ctxBeginPos: parseBlipDiffusionIndex(readJson('model_index.json')).ctxBeginPos,
});

const temp = makeTempDir('blip-caption-');
let bundle: Awaited<ReturnType<typeof bundleWorkerForTest>>;
let runtime: RuntimeClient;
beforeAll(async () => {
  bundle = await bundleWorkerForTest();
  runtime = RuntimeClient.start({ workerFile: bundle.file });
});
afterAll(async () => {
  await runtime?.close();
  bundle?.remove();
  temp.remove();
});

describe('the training caption (kit step 5: "a {category}", do_not_pad, truncation at 77)', () => {
  it('"a dog" → the kit’s caption_input_ids, unpadded', () => {
    expect(trainingCaption(config.category)).toBe(config.caption);
    const ids = tokenizeTrainingCaption(clip(), { category: config.category, ...modelFacts() });
    expect(ids).toEqual(config.caption_input_ids);
    const recorded = kitNpy('caption_input_ids');
    expect(recorded.shape).toEqual([config.batch, ids.length]);
    expect(Array.from(recorded.data as BigInt64Array, Number)).toEqual(Array.from({ length: config.batch }, () => ids).flat());
  });

  it('a longer category is not padded; one that leaves no room for the subject tokens is refused by name', () => {
    const tokenizer = clip();
    const facts = modelFacts();
    const ids = tokenizeTrainingCaption(tokenizer, { category: 'teddy bear', ...facts });
    expect(ids[0]).toBe(tokenizer.bosId);
    expect(ids.at(-1)).toBe(tokenizer.eosId);
    expect(ids.slice(0, -1)).not.toContain(tokenizer.eosId);
    expect(ids).toEqual(tokenizer.encode('a teddy bear'));
    const long = Array.from({ length: 70 }, () => 'dog').join(' ');
    expect(() => tokenizeTrainingCaption(tokenizer, { category: long, ...facts })).toThrow(CaptionTooLongError);
    expect(() => tokenizeTrainingCaption(tokenizer, { category: long, ...facts })).toThrow(/at most 61 fit/);
    // Truncation happens first, at model_max_length, as the reference tokeniser does.
    expect(() => tokenizeTrainingCaption(tokenizer, { category: long, ...facts, modelMaxLength: 10 })).not.toThrow();
    expect(tokenizeTrainingCaption(tokenizer, { category: long, ...facts, modelMaxLength: 10 })).toHaveLength(10);
    expect(() => tokenizeTrainingCaption(tokenizer, { category: 'dog', ...facts, ctxBeginPos: 5 })).toThrow(/ctx_begin_pos 5 lies beyond the caption's 4 tokens/);
  });

  it('broadcasts the caption and the [1, Q, D] subject embedding to the batch', () => {
    const embedding = { dims: [1, 2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
    const feeds = captionConditioningFeeds([7, 8, 9], embedding, 2);
    expect(feeds.inputIds.dims).toEqual([2, 3]);
    expect(Array.from(feeds.inputIds.data, Number)).toEqual([7, 8, 9, 7, 8, 9]);
    expect(feeds.ctxEmbeddings.dims).toEqual([2, 2, 3]);
    expect(Array.from(feeds.ctxEmbeddings.data)).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
    expect(() => captionConditioningFeeds([1], { dims: [2, 2, 3], data: new Float32Array(12) }, 2)).toThrow(/\[1, Q, D\]/);
  });
});

describe('encoder_hidden_states of the unpadded caption (kit step_1/encoder_hidden_states.npy, B = 3, n + Q = 20 positions)', () => {
  for (const fused of [true, false]) {
    it(`${fused ? 'fused' : 'primitive'} ops: the context text encoder on ids [3, 4] and the kit’s initial_embedding broadcast, within 1e-4 relative L2`, async ({ annotate }) => {
      const facts = modelFacts();
      const ids = tokenizeTrainingCaption(clip(), { category: config.category, ...facts });
      const embedding = kitNpy('initial_embedding');
      const feeds = captionConditioningFeeds(ids, { dims: embedding.shape, data: embedding.data as Float32Array }, config.batch);
      const { catalog, externalDataFolder } = catalogOf(await openComponentWeights(join(FINETUNE_KIT_MODEL, 'text_encoder'), { cacheDir: join(temp.path, 'cache') }));
      const graph = buildContextClipTextGraph(textConfig(), catalog, { batch: config.batch, queryTokenCount: facts.queryTokenCount, ctxBeginPos: config.ctx_begin_pos, textTokens: ids.length, fused });
      const expectedShape = kitNpy('encoder_hidden_states', 1).shape;
      expect(graph.outputs.map((o) => [o.name, o.shape])).toEqual([[CLIP_TEXT_OUTPUTS.lastHiddenState, expectedShape]]);
      const session = await runtime.createSession({ model: encodeModel(graph.model), externalDataFolder, device: 'cpu' });
      try {
        const outputs = await runtime.run(session.id, {
          [CLIP_TEXT_INPUTS.inputIds]: { type: 'int64', dims: feeds.inputIds.dims, data: feeds.inputIds.data },
          [CLIP_TEXT_INPUTS.ctxEmbeddings]: { type: 'float32', dims: feeds.ctxEmbeddings.dims, data: feeds.ctxEmbeddings.data },
        });
        const actual = outputs[CLIP_TEXT_OUTPUTS.lastHiddenState]?.data as Float32Array;
        const expected = kitFloat32('encoder_hidden_states', 1);
        const error = relativeL2(actual, expected);
        await annotate(`rel L2 ${error.toExponential(2)}, max |a − b| ${maxAbsDiff(actual, expected).toExponential(2)}`);
        expect(error).toBeLessThanOrEqual(KIT_REL_L2_FLOOR);
      } finally {
        await runtime.releaseSession(session.id);
      }
    });
  }
});
