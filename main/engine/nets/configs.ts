/**
 * Typed component configs, parsed from the JSON that diffusers/transformers save. A missing key takes
 * the default of the reference's config class (transformers 4.36.2: CLIPTextConfig, Blip2VisionConfig,
 * Blip2QFormerConfig, Blip2Config; diffusers 0.25.1: BlipDiffusionPipeline), because that is what the
 * reference model was built with. Invalid values fail with an error naming the key.
 */
import type { Activation } from '../graph/layers';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** transformers' `hidden_act` names → the activations the graph layer implements. */
const ACTIVATIONS: Readonly<Record<string, Activation>> = {
  gelu: 'gelu',
  quick_gelu: 'quick_gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
};

/** torch.nn.LayerNorm's default eps, used where the reference builds a LayerNorm without one. */
export const TORCH_LAYER_NORM_EPS = 1e-5;

export interface ClipTextConfig {
  /** diffusers' ContextCLIPTextModel: its final LayerNorm ignores `layer_norm_eps` (torch default eps). */
  contextModel: boolean;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  maxPositionEmbeddings: number;
  layerNormEps: number;
  finalLayerNormEps: number;
  hiddenAct: Activation;
}

export interface Blip2VisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  imageSize: number;
  patchSize: number;
  hiddenAct: Activation;
  layerNormEps: number;
  qkvBias: boolean;
}

export interface Blip2QFormerConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: Activation;
  maxPositionEmbeddings: number;
  layerNormEps: number;
  /** Layer i has cross-attention to the image when i % frequency == 0. */
  crossAttentionFrequency: number;
  encoderHiddenSize: number;
}

/** diffusers' Blip2QFormerModel config (a Blip2Config): vision tower + Q-Former + query count. */
export interface BlipQFormerModelConfig {
  vision: Blip2VisionConfig;
  qformer: Blip2QFormerConfig;
  numQueryTokens: number;
}

export interface BlipDiffusionIndex {
  /** Where the query embeddings are spliced into the prompt's token embeddings. */
  ctxBeginPos: number;
}

export function parseClipTextConfig(json: unknown): ClipTextConfig {
  const c = new ConfigReader(json, 'text_encoder config');
  const architectures = c.stringList('architectures');
  const config: ClipTextConfig = {
    contextModel: architectures.includes('ContextCLIPTextModel'),
    vocabSize: c.positiveInt('vocab_size', 49408),
    hiddenSize: c.positiveInt('hidden_size', 512),
    intermediateSize: c.positiveInt('intermediate_size', 2048),
    numHiddenLayers: c.positiveInt('num_hidden_layers', 12),
    numAttentionHeads: c.positiveInt('num_attention_heads', 8),
    maxPositionEmbeddings: c.positiveInt('max_position_embeddings', 77),
    layerNormEps: c.positiveNumber('layer_norm_eps', 1e-5),
    finalLayerNormEps: 0,
    hiddenAct: c.activation('hidden_act', 'quick_gelu'),
  };
  config.finalLayerNormEps = config.contextModel ? TORCH_LAYER_NORM_EPS : config.layerNormEps;
  c.divisible('hidden_size', config.hiddenSize, 'num_attention_heads', config.numAttentionHeads);
  return config;
}

export function parseBlipQFormerModelConfig(json: unknown): BlipQFormerModelConfig {
  const root = new ConfigReader(json, 'qformer config');
  const v = root.child('vision_config');
  const vision: Blip2VisionConfig = {
    hiddenSize: v.positiveInt('hidden_size', 1408),
    intermediateSize: v.positiveInt('intermediate_size', 6144),
    numHiddenLayers: v.positiveInt('num_hidden_layers', 39),
    numAttentionHeads: v.positiveInt('num_attention_heads', 16),
    imageSize: v.positiveInt('image_size', 224),
    patchSize: v.positiveInt('patch_size', 14),
    hiddenAct: v.activation('hidden_act', 'gelu'),
    layerNormEps: v.positiveNumber('layer_norm_eps', 1e-6),
    qkvBias: v.boolean('qkv_bias', true),
  };
  v.divisible('hidden_size', vision.hiddenSize, 'num_attention_heads', vision.numAttentionHeads);
  if (vision.patchSize > vision.imageSize) throw new ConfigError(`qformer config: vision_config.patch_size (${vision.patchSize}) exceeds vision_config.image_size (${vision.imageSize})`);

  const q = root.child('qformer_config');
  const qformer: Blip2QFormerConfig = {
    vocabSize: q.positiveInt('vocab_size', 30522),
    hiddenSize: q.positiveInt('hidden_size', 768),
    numHiddenLayers: q.positiveInt('num_hidden_layers', 12),
    numAttentionHeads: q.positiveInt('num_attention_heads', 12),
    intermediateSize: q.positiveInt('intermediate_size', 3072),
    hiddenAct: q.activation('hidden_act', 'gelu'),
    maxPositionEmbeddings: q.positiveInt('max_position_embeddings', 512),
    layerNormEps: q.positiveNumber('layer_norm_eps', 1e-12),
    crossAttentionFrequency: q.positiveInt('cross_attention_frequency', 2),
    encoderHiddenSize: q.positiveInt('encoder_hidden_size', 1408),
  };
  q.divisible('hidden_size', qformer.hiddenSize, 'num_attention_heads', qformer.numAttentionHeads);
  const positionType = q.string('position_embedding_type', 'absolute');
  if (positionType !== 'absolute') throw new ConfigError(`qformer config: qformer_config.position_embedding_type '${positionType}' is not supported (only 'absolute')`);
  if (qformer.encoderHiddenSize !== vision.hiddenSize) {
    throw new ConfigError(`qformer config: qformer_config.encoder_hidden_size (${qformer.encoderHiddenSize}) must equal vision_config.hidden_size (${vision.hiddenSize}): cross-attention reads the vision tower's output`);
  }
  return { vision, qformer, numQueryTokens: root.positiveInt('num_query_tokens', 32) };
}

/** The pipeline's model_index.json. */
export function parseBlipDiffusionIndex(json: unknown): BlipDiffusionIndex {
  const c = new ConfigReader(json, 'model_index.json');
  return { ctxBeginPos: c.nonNegativeInt('ctx_begin_pos', 2) };
}

/** Reads one JSON object's keys with defaults; errors name the key with its path. */
export class ConfigReader {
  readonly #object: Record<string, unknown>;
  readonly #where: string;
  readonly #path: string;

  constructor(json: unknown, where: string, path = '') {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`${where}${path ? `: ${path.slice(0, -1)}` : ''} must be a JSON object`);
    this.#object = json as Record<string, unknown>;
    this.#where = where;
    this.#path = path;
  }

  child(key: string): ConfigReader {
    const value = this.#object[key];
    // transformers builds a sub-config from defaults when the key is absent or null.
    return new ConfigReader(value === undefined || value === null ? {} : value, this.#where, `${this.#path}${key}.`);
  }

  positiveInt(key: string, fallback: number): number {
    const value = this.#value(key, fallback);
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw this.#error(key, 'a positive integer', value);
    return value;
  }

  nonNegativeInt(key: string, fallback: number): number {
    const value = this.#value(key, fallback);
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw this.#error(key, 'a non-negative integer', value);
    return value;
  }

  positiveNumber(key: string, fallback: number): number {
    const value = this.#value(key, fallback);
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw this.#error(key, 'a positive number', value);
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.#value(key, fallback);
    if (typeof value !== 'boolean') throw this.#error(key, 'true or false', value);
    return value;
  }

  string(key: string, fallback: string): string {
    const value = this.#value(key, fallback);
    if (typeof value !== 'string') throw this.#error(key, 'a string', value);
    return value;
  }

  stringList(key: string): string[] {
    const value = this.#value(key, []);
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw this.#error(key, 'a list of strings', value);
    return value;
  }

  activation(key: string, fallback: string): Activation {
    const name = this.string(key, fallback);
    const activation = ACTIVATIONS[name];
    if (!activation) throw this.#error(key, `one of ${Object.keys(ACTIVATIONS).join(', ')}`, name);
    return activation;
  }

  /** The raw value of a key, undefined when it is absent or null (for shapes the typed readers above do not cover). */
  raw(key: string): unknown {
    return this.#value(key, undefined);
  }

  /** Whether the key is present with the value null (diffusers gives some keys a meaning for an explicit None). */
  isExplicitNull(key: string): boolean {
    return key in this.#object && this.#object[key] === null;
  }

  /** An error naming `key` (with its path), what it must be and what it is. */
  invalid(key: string, expected: string, got: unknown): ConfigError {
    return this.#error(key, expected, got);
  }

  divisible(key: string, value: number, byKey: string, by: number): void {
    if (value % by !== 0) throw new ConfigError(`${this.#where}: ${this.#path}${key} (${value}) must be divisible by ${this.#path}${byKey} (${by})`);
  }

  /** A key that is absent or null takes the default, as the reference's config classes do. */
  #value(key: string, fallback: unknown): unknown {
    const value = this.#object[key];
    return value === undefined || value === null ? fallback : value;
  }

  #error(key: string, expected: string, got: unknown): ConfigError {
    return new ConfigError(`${this.#where}: ${this.#path}${key} must be ${expected} (got ${JSON.stringify(got)})`);
  }
}
