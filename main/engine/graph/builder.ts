/**
 * A typed graph builder: one method per op of a small set, each computing its output's element type
 * and static shape at build time (a mismatch throws, naming the node and its inputs), returning typed
 * `Value` handles. The result is a plain node list (`GraphNode`, a union discriminated by `op` with
 * typed attributes) that a reverse-mode pass can walk; `toModel` lowers it to ONNX (opset 21, plus
 * `com.microsoft` when a contrib op is used).
 *
 * Shape-like operands (Reshape's shape, Slice's starts…, reduce axes) are attributes here, not tensors:
 * they are static, so they stay readable to later passes, and the lowering emits them as int64 constants.
 */
import {
  ShapeProblem,
  broadcastShapes,
  concatShape,
  convShape,
  convTransposeShape,
  elementCount,
  formatShape,
  gatherShape,
  isValidShape,
  matMulShape,
  normalizeAxis,
  reduceShape,
  reshapeShape,
  sameShape,
  sliceShape,
  squeezeShape,
  transposeShape,
  unsqueezeShape,
  type ConvSpec,
  type ConvTransposeSpec,
  type Shape,
  type SliceSpec,
} from './shapes';
import type { OnnxModel } from './onnx-writer';
import { lowerToOnnx, type GraphOutput } from './to-onnx';

export type ElementType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'bool';

const FLOAT_TYPES: readonly ElementType[] = ['float32', 'float16', 'bfloat16', 'float64'];
const INDEX_TYPES: readonly ElementType[] = ['int64', 'int32'];

export function isFloatType(type: ElementType): boolean {
  return FLOAT_TYPES.includes(type);
}

/** A tensor in the graph: a graph input, an initializer or a node output. */
export interface Value {
  readonly id: number;
  readonly name: string;
  readonly type: ElementType;
  readonly shape: Shape;
}

type NoAttributes = Record<string, never>;

/** Every op the builder emits, with its static attributes. */
export interface OpAttributes {
  Identity: NoAttributes;
  Add: NoAttributes;
  Sub: NoAttributes;
  Mul: NoAttributes;
  Div: NoAttributes;
  Pow: NoAttributes;
  Sqrt: NoAttributes;
  Reciprocal: NoAttributes;
  Neg: NoAttributes;
  Exp: NoAttributes;
  Log: NoAttributes;
  Tanh: NoAttributes;
  Erf: NoAttributes;
  Sigmoid: NoAttributes;
  Sin: NoAttributes;
  Cos: NoAttributes;
  MatMul: NoAttributes;
  /** Y = alpha·A'·B' + beta·C with A' = transA ? Aᵀ : A (2-D operands). */
  Gemm: { transA: boolean; transB: boolean; alpha: number; beta: number };
  Softmax: { axis: number };
  ReduceMean: { axes: readonly number[]; keepDims: boolean };
  ReduceSum: { axes: readonly number[]; keepDims: boolean };
  /** `shape` is fully resolved (no −1). */
  Reshape: { shape: Shape };
  Transpose: { perm: readonly number[] };
  Concat: { axis: number };
  Slice: SliceSpec;
  Gather: { axis: number };
  Unsqueeze: { axes: readonly number[] };
  Squeeze: { axes: readonly number[] };
  Expand: { shape: Shape };
  Where: NoAttributes;
  Cast: { to: ElementType };
  Conv: ConvSpec;
  /** The transpose (adjoint) of the Conv with the same weight and attributes: the input gradient of Conv. */
  ConvTranspose: ConvTransposeSpec;
  /** Normalises over the axes from `axis` to the last (ONNX opset 17). */
  LayerNormalization: { axis: number; epsilon: number };
  /** ONNX opset 21: per-channel scale and bias [C] over (N, C, spatial…), statistics per group of C/numGroups channels. */
  GroupNormalization: { numGroups: number; epsilon: number };
  /** Nearest-neighbour resize to a static output shape, as PyTorch's `interpolate(mode='nearest')` (×2 or to a given size). */
  Resize: { sizes: Shape };
  /** ONNX opset 20. */
  Gelu: { approximate: 'none' | 'tanh' };
  /** com.microsoft: x·sigmoid(alpha·x). */
  QuickGelu: { alpha: number };
  /** com.microsoft, inputs (query [B,S,D], key [B,L,D], value [B,L,Dv], attention bias [B|1,H|1,S,L] or null). */
  MultiHeadAttention: { numHeads: number; scale: number };
}

export type OpType = keyof OpAttributes;

/** One node of the typed list; `null` marks an absent optional input (Gemm C, Conv bias, LN bias, MHA bias). */
export type GraphNode = {
  [K in OpType]: {
    readonly id: number;
    readonly name: string;
    readonly op: K;
    readonly inputs: readonly (Value | null)[];
    readonly outputs: readonly Value[];
    readonly attributes: Readonly<OpAttributes[K]>;
  };
}[OpType];

export type ConstantArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export type InitializerData =
  /** Small constants, written into the model. */
  | { kind: 'inline'; values: ConstantArray }
  /** Weights: bytes of a file relative to the model's external-data folder. */
  | { kind: 'external'; file: string; offset: number; byteLength: number };

export interface Initializer {
  readonly value: Value;
  readonly data: InitializerData;
}

/** A shape or type error at build time, naming the node and its inputs. */
export class GraphBuildError extends Error {}

/** Constants up to this many elements are shared between identical requests (scalars, small shapes). */
const SHARED_CONSTANT_MAX_ELEMENTS = 16;

export class GraphBuilder {
  readonly #nodes: GraphNode[] = [];
  readonly #inputs: Value[] = [];
  readonly #initializers: Initializer[] = [];
  readonly #unbound: Value[] = [];
  readonly #names = new Set<string>();
  readonly #sharedConstants = new Map<string, Value>();
  readonly #scopes: string[] = [];
  #nextId = 0;

  get nodes(): readonly GraphNode[] {
    return this.#nodes;
  }

  get inputs(): readonly Value[] {
    return this.#inputs;
  }

  get initializers(): readonly Initializer[] {
    return this.#initializers;
  }

  /** Values declared but never bound to data (e.g. a missing weight); `toModel` refuses graphs that use one. */
  get unboundValues(): readonly Value[] {
    return this.#unbound;
  }

  /** Runs `build` with `name/` prefixed to the node names it creates, for readable graphs and errors. */
  scope<T>(name: string, build: () => T): T {
    this.#scopes.push(name);
    try {
      return build();
    } finally {
      this.#scopes.pop();
    }
  }

  input(name: string, type: ElementType, shape: Shape): Value {
    const value = this.#value(name, type, shape);
    this.#inputs.push(value);
    return value;
  }

  /** A small constant written into the model. `values` are row-major; booleans as 0/1. */
  constant(values: ArrayLike<number> | readonly bigint[], shape: Shape, type: ElementType = 'float32'): Value {
    const data = constantArray(values, type);
    if (data.length !== elementCount(shape)) throw new GraphBuildError(`constant of shape ${formatShape(shape)} needs ${elementCount(shape)} values, got ${data.length}`);
    const key = data.length <= SHARED_CONSTANT_MAX_ELEMENTS ? `${type}${formatShape(shape)}${Array.from(data, String).join(',')}` : null;
    const shared = key === null ? undefined : this.#sharedConstants.get(key);
    if (shared) return shared;
    const value = this.#value(this.#uniqueName('const'), type, shape);
    this.#initializers.push({ value, data: { kind: 'inline', values: data } });
    if (key !== null) this.#sharedConstants.set(key, value);
    return value;
  }

  /** A float32 scalar constant. */
  scalar(x: number): Value {
    return this.constant([x], []);
  }

  /** An initializer whose bytes live in a file next to the model (the weights, memory-mapped by ORT). */
  external(name: string, type: ElementType, shape: Shape, location: { file: string; offset: number; byteLength: number }): Value {
    const value = this.#value(name, type, shape);
    this.#initializers.push({ value, data: { kind: 'external', ...location } });
    return value;
  }

  /** A placeholder of the right type and shape for data that could not be found, so a build can go on and report every problem. */
  unbound(name: string, type: ElementType, shape: Shape): Value {
    const value = this.#value(name, type, shape);
    this.#unbound.push(value);
    return value;
  }

  identity(x: Value): Value {
    return this.#node('Identity', [x], {}, () => ({ type: x.type, shape: x.shape }));
  }

  add(a: Value, b: Value): Value {
    return this.#binary('Add', a, b);
  }

  sub(a: Value, b: Value): Value {
    return this.#binary('Sub', a, b);
  }

  mul(a: Value, b: Value): Value {
    return this.#binary('Mul', a, b);
  }

  div(a: Value, b: Value): Value {
    return this.#binary('Div', a, b);
  }

  pow(a: Value, b: Value): Value {
    return this.#binary('Pow', a, b);
  }

  sqrt(x: Value): Value {
    return this.#unaryFloat('Sqrt', x);
  }

  reciprocal(x: Value): Value {
    return this.#unaryFloat('Reciprocal', x);
  }

  neg(x: Value): Value {
    return this.#node('Neg', [x], {}, () => ({ type: x.type, shape: x.shape }));
  }

  exp(x: Value): Value {
    return this.#unaryFloat('Exp', x);
  }

  /** Natural logarithm (the reverse pass needs it for Pow's exponent). */
  log(x: Value): Value {
    return this.#unaryFloat('Log', x);
  }

  tanh(x: Value): Value {
    return this.#unaryFloat('Tanh', x);
  }

  erf(x: Value): Value {
    return this.#unaryFloat('Erf', x);
  }

  sigmoid(x: Value): Value {
    return this.#unaryFloat('Sigmoid', x);
  }

  sin(x: Value): Value {
    return this.#unaryFloat('Sin', x);
  }

  cos(x: Value): Value {
    return this.#unaryFloat('Cos', x);
  }

  matMul(a: Value, b: Value): Value {
    return this.#node('MatMul', [a, b], {}, () => ({ type: sameFloatType(a, b), shape: matMulShape(a.shape, b.shape) }));
  }

  gemm(a: Value, b: Value, c: Value | null, options: Partial<OpAttributes['Gemm']> = {}): Value {
    const attributes = { transA: false, transB: false, alpha: 1, beta: 1, ...options };
    return this.#node('Gemm', [a, b, c], attributes, () => {
      if (a.shape.length !== 2 || b.shape.length !== 2) throw new ShapeProblem('Gemm operands must be 2-D');
      const [m, k] = attributes.transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
      const [k2, n] = attributes.transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
      if (k !== k2) throw new ShapeProblem(`inner dims differ (${k} ≠ ${k2})`);
      const shape = [m as number, n as number];
      if (c !== null) {
        if (c.type !== a.type) throw new ShapeProblem(`C is ${c.type}, A is ${a.type}`);
        if (!sameShape(broadcastShapes(c.shape, shape), shape)) throw new ShapeProblem(`C ${formatShape(c.shape)} does not broadcast to ${formatShape(shape)}`);
      }
      return { type: sameFloatType(a, b), shape };
    });
  }

  softmax(x: Value, axis: number): Value {
    return this.#node('Softmax', [x], { axis }, () => {
      normalizeAxis(axis, x.shape.length);
      return { type: floatType(x), shape: x.shape };
    });
  }

  reduceMean(x: Value, axes: readonly number[], keepDims = true): Value {
    return this.#node('ReduceMean', [x], { axes: [...axes], keepDims }, () => ({ type: floatType(x), shape: reduceShape(x.shape, axes, keepDims) }));
  }

  reduceSum(x: Value, axes: readonly number[], keepDims = true): Value {
    return this.#node('ReduceSum', [x], { axes: [...axes], keepDims }, () => ({ type: x.type, shape: reduceShape(x.shape, axes, keepDims) }));
  }

  /** `shape` may hold one −1; the node records the resolved shape. */
  reshape(x: Value, shape: Shape): Value {
    const attributes = { shape: [...shape] as Shape };
    return this.#node('Reshape', [x], attributes, () => {
      attributes.shape = reshapeShape(x.shape, shape);
      return { type: x.type, shape: attributes.shape };
    });
  }

  transpose(x: Value, perm: readonly number[]): Value {
    return this.#node('Transpose', [x], { perm: [...perm] }, () => ({ type: x.type, shape: transposeShape(x.shape, perm) }));
  }

  concat(values: readonly Value[], axis: number): Value {
    return this.#node('Concat', values, { axis }, () => {
      const type = values[0]?.type;
      if (type === undefined || values.some((v) => v.type !== type)) throw new ShapeProblem('inputs must share one element type');
      return { type, shape: concatShape(values.map((v) => v.shape), axis) };
    });
  }

  /** Slice with ONNX semantics; `steps` default to 1. */
  slice(x: Value, spec: { starts: readonly number[]; ends: readonly number[]; axes: readonly number[]; steps?: readonly number[] }): Value {
    const attributes: SliceSpec = { starts: [...spec.starts], ends: [...spec.ends], axes: [...spec.axes], steps: [...(spec.steps ?? spec.axes.map(() => 1))] };
    return this.#node('Slice', [x], attributes, () => ({ type: x.type, shape: sliceShape(x.shape, attributes) }));
  }

  gather(data: Value, indices: Value, axis = 0): Value {
    return this.#node('Gather', [data, indices], { axis }, () => {
      if (!INDEX_TYPES.includes(indices.type)) throw new ShapeProblem(`indices must be int64 or int32, not ${indices.type}`);
      return { type: data.type, shape: gatherShape(data.shape, indices.shape, axis) };
    });
  }

  unsqueeze(x: Value, axes: readonly number[]): Value {
    return this.#node('Unsqueeze', [x], { axes: [...axes] }, () => ({ type: x.type, shape: unsqueezeShape(x.shape, axes) }));
  }

  squeeze(x: Value, axes: readonly number[]): Value {
    return this.#node('Squeeze', [x], { axes: [...axes] }, () => ({ type: x.type, shape: squeezeShape(x.shape, axes) }));
  }

  /** ONNX Expand: bidirectional broadcast of `x` against `shape`. */
  expand(x: Value, shape: Shape): Value {
    return this.#node('Expand', [x], { shape: [...shape] }, () => {
      if (!isValidShape(shape)) throw new ShapeProblem(`target ${formatShape(shape)} must hold non-negative integers`);
      return { type: x.type, shape: broadcastShapes(x.shape, shape) };
    });
  }

  where(condition: Value, x: Value, y: Value): Value {
    return this.#node('Where', [condition, x, y], {}, () => {
      if (condition.type !== 'bool') throw new ShapeProblem(`condition must be bool, not ${condition.type}`);
      if (x.type !== y.type) throw new ShapeProblem(`branches differ in type (${x.type}, ${y.type})`);
      return { type: x.type, shape: broadcastShapes(condition.shape, x.shape, y.shape) };
    });
  }

  cast(x: Value, to: ElementType): Value {
    return this.#node('Cast', [x], { to }, () => ({ type: to, shape: x.shape }));
  }

  conv(x: Value, weight: Value, bias: Value | null, options: { strides: readonly number[]; pads?: readonly number[]; dilations?: readonly number[]; group?: number }): Value {
    const spatial = weight.shape.slice(2);
    const attributes: ConvSpec = {
      kernelShape: spatial,
      strides: [...options.strides],
      pads: [...(options.pads ?? [...spatial, ...spatial].map(() => 0))],
      dilations: [...(options.dilations ?? spatial.map(() => 1))],
      group: options.group ?? 1,
    };
    return this.#node('Conv', [x, weight, bias], attributes, () => {
      const shape = convShape(x.shape, weight.shape, attributes);
      if (bias !== null && !sameShape(bias.shape, [shape[1] as number])) throw new ShapeProblem(`bias ${formatShape(bias.shape)} must be [${shape[1]}]`);
      return { type: sameFloatType(x, weight), shape };
    });
  }

  /** ConvTranspose with weights (M, C/group, kernel…), i.e. the adjoint of `conv` with that weight. */
  convTranspose(
    x: Value,
    weight: Value,
    bias: Value | null,
    options: { strides: readonly number[]; pads?: readonly number[]; dilations?: readonly number[]; group?: number; outputPadding?: readonly number[] },
  ): Value {
    const spatial = weight.shape.slice(2);
    const attributes: ConvTransposeSpec = {
      kernelShape: spatial,
      strides: [...options.strides],
      pads: [...(options.pads ?? [...spatial, ...spatial].map(() => 0))],
      dilations: [...(options.dilations ?? spatial.map(() => 1))],
      group: options.group ?? 1,
      outputPadding: [...(options.outputPadding ?? spatial.map(() => 0))],
    };
    return this.#node('ConvTranspose', [x, weight, bias], attributes, () => {
      const shape = convTransposeShape(x.shape, weight.shape, attributes);
      if (bias !== null && !sameShape(bias.shape, [shape[1] as number])) throw new ShapeProblem(`bias ${formatShape(bias.shape)} must be [${shape[1]}]`);
      return { type: sameFloatType(x, weight), shape };
    });
  }

  layerNormalization(x: Value, scale: Value, bias: Value | null, options: { axis: number; epsilon: number }): Value {
    return this.#node('LayerNormalization', [x, scale, bias], { ...options }, () => {
      const normalized = x.shape.slice(normalizeAxis(options.axis, x.shape.length));
      for (const p of bias === null ? [scale] : [scale, bias]) {
        if (!sameShape(p.shape, normalized)) throw new ShapeProblem(`scale/bias ${formatShape(p.shape)} must be ${formatShape(normalized)}`);
        if (p.type !== x.type) throw new ShapeProblem(`scale/bias are ${p.type}, input is ${x.type}`);
      }
      return { type: floatType(x), shape: x.shape };
    });
  }

  /** GroupNormalization (opset 21) of x (N, C, spatial…) with per-channel `scale`/`bias` [C]. */
  groupNormalization(x: Value, scale: Value, bias: Value, options: { numGroups: number; epsilon: number }): Value {
    return this.#node('GroupNormalization', [x, scale, bias], { ...options }, () => {
      if (x.shape.length < 3) throw new ShapeProblem(`input ${formatShape(x.shape)} must be (N, C, spatial…)`);
      const channels = x.shape[1] as number;
      const groups = options.numGroups;
      if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) throw new ShapeProblem(`${channels} channels do not split into ${groups} groups`);
      for (const p of [scale, bias]) {
        if (!sameShape(p.shape, [channels])) throw new ShapeProblem(`scale/bias ${formatShape(p.shape)} must be [${channels}]`);
        if (p.type !== x.type) throw new ShapeProblem(`scale/bias are ${p.type}, input is ${x.type}`);
      }
      return { type: floatType(x), shape: x.shape };
    });
  }

  /**
   * Nearest-neighbour Resize of x to `sizes` (the full output shape; usually the spatial dims ×2), with
   * PyTorch's `interpolate(mode='nearest')` rule: output index i reads input index floor(i · in / out) for
   * whole factors; other factors are computed in float32 as ORT does (shapes.ts nearestSourceIndices).
   */
  resizeNearest(x: Value, sizes: Shape): Value {
    return this.#node('Resize', [x], { sizes: [...sizes] }, () => {
      if (sizes.length !== x.shape.length) throw new ShapeProblem(`${sizes.length} output sizes for rank ${x.shape.length}`);
      if (!isValidShape(sizes) || sizes.some((d, i) => d === 0 && x.shape[i] !== 0)) throw new ShapeProblem(`output sizes ${formatShape(sizes)} must be positive integers`);
      return { type: floatType(x), shape: sizes };
    });
  }

  gelu(x: Value, approximate: 'none' | 'tanh' = 'none'): Value {
    return this.#node('Gelu', [x], { approximate }, () => ({ type: floatType(x), shape: x.shape }));
  }

  quickGelu(x: Value, alpha: number): Value {
    return this.#node('QuickGelu', [x], { alpha }, () => ({ type: floatType(x), shape: x.shape }));
  }

  multiHeadAttention(query: Value, key: Value, value: Value, attentionBias: Value | null, options: { numHeads: number; scale: number }): Value {
    return this.#node('MultiHeadAttention', [query, key, value, attentionBias], { ...options }, () => {
      if (query.shape.length !== 3 || key.shape.length !== 3 || value.shape.length !== 3) throw new ShapeProblem('query, key and value must be [batch, sequence, hidden]');
      const [b, s, d] = query.shape;
      const [bk, l, dk] = key.shape;
      const [bv, lv, dv] = value.shape;
      if (bk !== b || bv !== b || lv !== l || dk !== d) throw new ShapeProblem('key/value must match the query batch and hidden size, and each other in length');
      const heads = options.numHeads;
      if (!Number.isInteger(heads) || heads < 1 || (d as number) % heads !== 0 || (dv as number) % heads !== 0) throw new ShapeProblem(`hidden sizes ${d}/${dv} do not split into ${heads} heads`);
      if (attentionBias !== null) {
        const [bb, hb, sb, lb] = attentionBias.shape;
        const ok = attentionBias.shape.length === 4 && (bb === 1 || bb === b) && (hb === 1 || hb === heads) && sb === s && lb === l;
        if (!ok) throw new ShapeProblem(`attention bias ${formatShape(attentionBias.shape)} must be [${b} or 1, ${heads} or 1, ${s}, ${l}]`);
        if (attentionBias.type !== query.type) throw new ShapeProblem(`attention bias is ${attentionBias.type}, query is ${query.type}`);
      }
      return { type: sameFloatType(query, key, value), shape: [b as number, s as number, dv as number] };
    });
  }

  /** Lowers the nodes that the outputs depend on to an ONNX model. */
  toModel(spec: { name: string; outputs: readonly GraphOutput[]; docString?: string }): OnnxModel {
    return lowerToOnnx({ nodes: this.#nodes, inputs: this.#inputs, initializers: this.#initializers, unbound: this.#unbound }, spec);
  }

  #binary(op: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow', a: Value, b: Value): Value {
    return this.#node(op, [a, b], {}, () => {
      if (a.type !== b.type) throw new ShapeProblem(`operand types differ (${a.type}, ${b.type})`);
      return { type: a.type, shape: broadcastShapes(a.shape, b.shape) };
    });
  }

  #unaryFloat(op: 'Sqrt' | 'Reciprocal' | 'Exp' | 'Log' | 'Tanh' | 'Erf' | 'Sigmoid' | 'Sin' | 'Cos', x: Value): Value {
    return this.#node(op, [x], {}, () => ({ type: floatType(x), shape: x.shape }));
  }

  #node<K extends OpType>(op: K, inputs: readonly (Value | null)[], attributes: OpAttributes[K], infer: () => { type: ElementType; shape: Shape }): Value {
    const name = this.#uniqueName(op);
    let result: { type: ElementType; shape: Shape };
    try {
      result = infer();
    } catch (error) {
      if (!(error instanceof ShapeProblem)) throw error;
      const described = inputs.map((v) => (v === null ? '(none)' : `${v.name}: ${v.type}${formatShape(v.shape)}`)).join(', ');
      throw new GraphBuildError(`${name} (${op}): ${error.message}; inputs: ${described}`);
    }
    const output = this.#value(name, result.type, result.shape);
    // The mapped union cannot be built from a generic K without a cast; `op` and `attributes` agree by the signature.
    this.#nodes.push({ id: this.#nodes.length, name, op, inputs: [...inputs], outputs: [output], attributes } as GraphNode);
    return output;
  }

  #value(name: string, type: ElementType, shape: Shape): Value {
    if (this.#names.has(name)) throw new GraphBuildError(`the graph already has a value named '${name}'`);
    if (!isValidShape(shape)) throw new GraphBuildError(`'${name}' has an invalid shape ${formatShape(shape)}`);
    this.#names.add(name);
    return { id: this.#nextId++, name, type, shape: [...shape] };
  }

  #uniqueName(base: string): string {
    const prefix = this.#scopes.length > 0 ? `${this.#scopes.join('/')}/` : '';
    return `${prefix}${base}_${this.#nextId}`;
  }
}

function floatType(x: Value): ElementType {
  if (!isFloatType(x.type)) throw new ShapeProblem(`${x.name} must be a float tensor, not ${x.type}`);
  return x.type;
}

function sameFloatType(...values: Value[]): ElementType {
  const type = floatType(values[0] as Value);
  for (const v of values) if (v.type !== type) throw new ShapeProblem(`operand types differ (${values.map((w) => w.type).join(', ')})`);
  return type;
}

function constantArray(values: ArrayLike<number> | readonly bigint[], type: ElementType): ConstantArray {
  const numbers = Array.from(values as ArrayLike<number | bigint>, Number);
  switch (type) {
    case 'float32':
      return Float32Array.from(numbers);
    case 'float64':
      return Float64Array.from(numbers);
    case 'int64':
      return BigInt64Array.from(Array.from(values as ArrayLike<number | bigint>, (v) => BigInt(v)));
    case 'int32':
      return Int32Array.from(numbers);
    case 'bool':
      return Uint8Array.from(numbers, (v) => (v ? 1 : 0));
    default:
      throw new GraphBuildError(`constants of type ${type} are not supported (use float32 and a Cast)`);
  }
}
