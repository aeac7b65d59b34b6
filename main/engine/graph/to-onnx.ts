/**
 * Lowering of the builder's typed node list to an ONNX model (opset 21): keeps only what the outputs
 * depend on, turns static shape operands into int64 constants, and declares `com.microsoft` only when
 * a contrib op is used.
 */
import type { ConstantArray, ElementType, GraphNode, Initializer, Value } from './builder';
import { TensorDataType, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor } from './onnx-writer';
import { formatShape } from './shapes';

export const ONNX_OPSET = 21;
export const MICROSOFT_DOMAIN = 'com.microsoft';
const MICROSOFT_OPSET = 1;
const PRODUCER = 'blip-studio';

/** A graph output: `value` exposed under `name` (an Identity renames it when the names differ). */
export interface GraphOutput {
  name: string;
  value: Value;
}

export interface GraphContents {
  nodes: readonly GraphNode[];
  inputs: readonly Value[];
  initializers: readonly Initializer[];
  unbound: readonly Value[];
}

export const ONNX_ELEMENT_TYPE: Readonly<Record<ElementType, TensorDataType>> = {
  float32: TensorDataType.FLOAT,
  float16: TensorDataType.FLOAT16,
  bfloat16: TensorDataType.BFLOAT16,
  float64: TensorDataType.DOUBLE,
  int64: TensorDataType.INT64,
  int32: TensorDataType.INT32,
  bool: TensorDataType.BOOL,
};

export function lowerToOnnx(graph: GraphContents, spec: { name: string; outputs: readonly GraphOutput[]; docString?: string }): OnnxModel {
  if (spec.outputs.length === 0) throw new Error(`graph '${spec.name}' has no outputs`);
  const needed = neededValues(graph.nodes, spec.outputs.map((o) => o.value));
  const unbound = graph.unbound.filter((v) => needed.has(v.id));
  if (unbound.length > 0) throw new Error(`graph '${spec.name}' uses values with no data: ${unbound.map((v) => v.name).join(', ')}`);

  const extraInitializers: OnnxTensor[] = [];
  const constants: ShapeConstants = {
    int64: (name, values) => {
      extraInitializers.push(inlineTensor(name, 'int64', [values.length], BigInt64Array.from(values, (v) => BigInt(v))));
      return name;
    },
    float32: (name, values) => {
      extraInitializers.push(inlineTensor(name, 'float32', [values.length], Float32Array.from(values)));
      return name;
    },
  };
  const nodes = graph.nodes.filter((node) => node.outputs.some((o) => needed.has(o.id))).map((node) => lowerNode(node, constants));

  const taken = new Set([...graph.inputs, ...graph.initializers.map((i) => i.value), ...graph.nodes.flatMap((n) => n.outputs)].map((v) => v.name));
  for (const output of spec.outputs) {
    if (output.name === output.value.name) continue;
    if (taken.has(output.name)) throw new Error(`graph '${spec.name}': output name '${output.name}' is already a value of the graph`);
    taken.add(output.name);
    nodes.push({ opType: 'Identity', name: `output/${output.name}`, inputs: [output.value.name], outputs: [output.name] });
  }

  const initializers = graph.initializers.filter((i) => needed.has(i.value.id)).map(lowerInitializer);
  const usesMicrosoft = nodes.some((n) => n.domain === MICROSOFT_DOMAIN);
  return {
    producerName: PRODUCER,
    ...(spec.docString !== undefined ? { docString: spec.docString } : {}),
    opsetImports: [{ domain: '', version: ONNX_OPSET }, ...(usesMicrosoft ? [{ domain: MICROSOFT_DOMAIN, version: MICROSOFT_OPSET }] : [])],
    graph: {
      name: spec.name,
      nodes,
      inputs: graph.inputs.map(valueInfo),
      outputs: spec.outputs.map((o) => ({ name: o.name, elemType: ONNX_ELEMENT_TYPE[o.value.type], shape: o.value.shape })),
      initializers: [...initializers, ...extraInitializers],
    },
  };
}

/** Ids of every value the outputs depend on (nodes are in creation order, so one backward sweep suffices). */
function neededValues(nodes: readonly GraphNode[], outputs: readonly Value[]): Set<number> {
  const needed = new Set(outputs.map((v) => v.id));
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i] as GraphNode;
    if (!node.outputs.some((o) => needed.has(o.id))) continue;
    for (const input of node.inputs) if (input) needed.add(input.id);
  }
  return needed;
}

const int = (name: string, value: number): OnnxAttribute => ({ name, kind: 'int', value });
const float = (name: string, value: number): OnnxAttribute => ({ name, kind: 'float', value });
const ints = (name: string, value: readonly number[]): OnnxAttribute => ({ name, kind: 'ints', value });
const str = (name: string, value: string): OnnxAttribute => ({ name, kind: 'string', value });

/** Emitters of a node's 1-D constant operands (shapes, axes, Resize scales/sizes): each adds an initializer and returns its name. */
interface ShapeConstants {
  int64: (name: string, values: readonly number[]) => string;
  float32: (name: string, values: readonly number[]) => string;
}

function lowerNode(node: GraphNode, constants: ShapeConstants): OnnxNode {
  const int64Constant = constants.int64;
  const inputs = node.inputs.map((v) => (v ? v.name : ''));
  const base = { name: node.name, outputs: node.outputs.map((o) => o.name) };
  const plain = (attributes: OnnxAttribute[] = [], extraInputs: string[] = []): OnnxNode => ({ ...base, opType: node.op, inputs: trimOptional([...inputs, ...extraInputs]), attributes });
  switch (node.op) {
    case 'Gemm': {
      const a = node.attributes;
      return plain([float('alpha', a.alpha), float('beta', a.beta), int('transA', a.transA ? 1 : 0), int('transB', a.transB ? 1 : 0)]);
    }
    case 'Softmax':
      return plain([int('axis', node.attributes.axis)]);
    case 'ReduceMean':
    case 'ReduceSum':
      return plain([int('keepdims', node.attributes.keepDims ? 1 : 0)], [int64Constant(`${node.name}/axes`, node.attributes.axes)]);
    case 'Reshape':
      return plain([], [int64Constant(`${node.name}/shape`, node.attributes.shape)]);
    case 'Expand':
      return plain([], [int64Constant(`${node.name}/shape`, node.attributes.shape)]);
    case 'Transpose':
      return plain([ints('perm', node.attributes.perm)]);
    case 'Concat':
      return plain([int('axis', node.attributes.axis)]);
    case 'Slice': {
      const a = node.attributes;
      return plain(
        [],
        [int64Constant(`${node.name}/starts`, a.starts), int64Constant(`${node.name}/ends`, a.ends), int64Constant(`${node.name}/axes`, a.axes), int64Constant(`${node.name}/steps`, a.steps)],
      );
    }
    case 'Gather':
      return plain([int('axis', node.attributes.axis)]);
    case 'Unsqueeze':
    case 'Squeeze':
      return plain([], [int64Constant(`${node.name}/axes`, node.attributes.axes)]);
    case 'Cast':
      return plain([int('to', ONNX_ELEMENT_TYPE[node.attributes.to])]);
    case 'Conv': {
      const a = node.attributes;
      return plain([ints('kernel_shape', a.kernelShape), ints('strides', a.strides), ints('pads', a.pads), ints('dilations', a.dilations), int('group', a.group)]);
    }
    case 'ConvTranspose': {
      const a = node.attributes;
      return plain([
        ints('kernel_shape', a.kernelShape),
        ints('strides', a.strides),
        ints('pads', a.pads),
        ints('dilations', a.dilations),
        int('group', a.group),
        ints('output_padding', a.outputPadding),
      ]);
    }
    case 'LayerNormalization':
      return plain([int('axis', node.attributes.axis), float('epsilon', node.attributes.epsilon)]);
    case 'GroupNormalization':
      return plain([int('num_groups', node.attributes.numGroups), float('epsilon', node.attributes.epsilon)]);
    case 'Resize': {
      // Asymmetric coordinates + floor is PyTorch's 'nearest'. Whole factors go in as `scales` (the
      // common ×2, exact in float), other targets as `sizes`. Inputs: X, roi (absent), scales, sizes.
      const input = node.inputs[0] as Value;
      const { sizes } = node.attributes;
      const factors = sizes.map((d, i) => d / (input.shape[i] as number));
      const whole = factors.every((f) => Number.isInteger(f) && f >= 1);
      const attributes = [str('mode', 'nearest'), str('coordinate_transformation_mode', 'asymmetric'), str('nearest_mode', 'floor')];
      return whole
        ? plain(attributes, ['', constants.float32(`${node.name}/scales`, factors)])
        : plain(attributes, ['', '', constants.int64(`${node.name}/sizes`, sizes)]);
    }
    case 'Gelu':
      return plain([str('approximate', node.attributes.approximate)]);
    case 'QuickGelu':
      return { ...plain([float('alpha', node.attributes.alpha)]), domain: MICROSOFT_DOMAIN };
    case 'MultiHeadAttention': {
      // Contrib op input order: query, key, value, bias, key_padding_mask, attention_bias.
      const [query, key, value, attentionBias] = inputs;
      const contribInputs = trimOptional([query ?? '', key ?? '', value ?? '', '', '', attentionBias ?? '']);
      return { ...base, opType: node.op, domain: MICROSOFT_DOMAIN, inputs: contribInputs, attributes: [int('num_heads', node.attributes.numHeads), float('scale', node.attributes.scale)] };
    }
    case 'Identity':
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
    case 'Pow':
    case 'Sqrt':
    case 'Reciprocal':
    case 'Neg':
    case 'Exp':
    case 'Log':
    case 'Tanh':
    case 'Erf':
    case 'Sigmoid':
    case 'Sin':
    case 'Cos':
    case 'MatMul':
    case 'Where':
      return plain();
  }
}

/** Absent optional inputs are '' in ONNX; trailing ones may be dropped. */
function trimOptional(inputs: string[]): string[] {
  let end = inputs.length;
  while (end > 0 && inputs[end - 1] === '') end--;
  return inputs.slice(0, end);
}

function valueInfo(value: Value) {
  return { name: value.name, elemType: ONNX_ELEMENT_TYPE[value.type], shape: value.shape };
}

function lowerInitializer(initializer: Initializer): OnnxTensor {
  const { value, data } = initializer;
  if (data.kind === 'inline') return inlineTensor(value.name, value.type, value.shape, data.values);
  return {
    name: value.name,
    dataType: ONNX_ELEMENT_TYPE[value.type],
    dims: value.shape,
    data: { location: 'external', file: data.file, offset: data.offset, length: data.byteLength },
  };
}

function inlineTensor(name: string, type: ElementType, dims: readonly number[], values: ConstantArray): OnnxTensor {
  return { name, dataType: ONNX_ELEMENT_TYPE[type], dims, data: { location: 'inline', bytes: littleEndianBytes(values, type, name, dims) } };
}

/** Raw tensor bytes in ONNX's little-endian layout, whatever the host's byte order. */
function littleEndianBytes(values: ConstantArray, type: ElementType, name: string, dims: readonly number[]): Uint8Array {
  const size = { float32: 4, float64: 8, int64: 8, int32: 4, bool: 1, float16: 2, bfloat16: 2 }[type];
  const bytes = new Uint8Array(values.length * size);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number | bigint;
    if (type === 'float32') view.setFloat32(i * size, Number(v), true);
    else if (type === 'float64') view.setFloat64(i * size, Number(v), true);
    else if (type === 'int64') view.setBigInt64(i * size, BigInt(v), true);
    else if (type === 'int32') view.setInt32(i * size, Number(v), true);
    else if (type === 'bool') view.setUint8(i * size, Number(v) ? 1 : 0);
    else throw new Error(`inline constant '${name}' ${formatShape(dims)}: ${type} constants are not supported`);
  }
  return bytes;
}
