/**
 * Write side of the ONNX file format: plain typed objects in, `ModelProto` bytes out.
 *
 * A hand-written protobuf encoder for the handful of messages a graph builder emits, so the pure
 * layers need no protobuf library and no Node API. Field numbers follow onnx/onnx.proto (IR 10).
 * Weights are meant to live outside the proto as external data (a ModelProto is capped at 2 GiB
 * and embedding big tensors is slow), so raw bytes are only for small constants.
 */

/** `TensorProto.DataType`: the ONNX element type numbers. */
export const TensorDataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
} as const;
export type TensorDataType = (typeof TensorDataType)[keyof typeof TensorDataType];

/** IR version 10 is the one that goes with opset 21 (ONNX 1.16); ORT 1.30 reads it. */
export const DEFAULT_IR_VERSION = 10;

export interface OperatorSetId {
  /** '' is the default ONNX domain. */
  domain: string;
  version: number;
}

/** Tensor bytes either inline (`raw_data`, little-endian) or in a file next to the model. */
export type TensorData =
  | { location: 'inline'; bytes: Uint8Array }
  | {
      location: 'external';
      /** Relative to the model's folder (ORT rejects absolute paths and `..`). */
      file: string;
      offset: number;
      /** Optional: ORT derives it from the shape when absent. */
      length?: number;
    };

export interface OnnxTensor {
  name: string;
  dataType: TensorDataType;
  dims: readonly number[];
  data: TensorData;
}

export type OnnxAttribute =
  | { name: string; kind: 'float'; value: number }
  | { name: string; kind: 'int'; value: number }
  | { name: string; kind: 'string'; value: string }
  | { name: string; kind: 'tensor'; value: OnnxTensor }
  | { name: string; kind: 'floats'; value: readonly number[] }
  | { name: string; kind: 'ints'; value: readonly number[] }
  | { name: string; kind: 'strings'; value: readonly string[] };

export interface OnnxNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  /** '' (or absent) for standard ONNX ops, e.g. 'com.microsoft' for ORT contrib ops. */
  domain?: string;
  attributes?: readonly OnnxAttribute[];
}

/** A tensor-typed graph input/output. A number is a static dim, a string a named symbolic dim. */
export interface OnnxValueInfo {
  name: string;
  elemType: TensorDataType;
  shape: readonly (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  initializers?: readonly OnnxTensor[];
  valueInfo?: readonly OnnxValueInfo[];
}

export interface OnnxModel {
  irVersion?: number;
  producerName: string;
  producerVersion?: string;
  opsetImports: readonly OperatorSetId[];
  graph: OnnxGraph;
  docString?: string;
}

export function encodeModel(model: OnnxModel): Uint8Array {
  return modelMessage(model).finish();
}

/** Exposed for tests and for builders that cache encoded constants. */
export function encodeTensor(tensor: OnnxTensor): Uint8Array {
  return tensorMessage(tensor).finish();
}

/** Float32 values as little-endian `raw_data` bytes, whatever the host's byte order. */
export function float32Bytes(values: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] ?? 0, true);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// ONNX messages → protobuf fields. Comments name the onnx.proto message; numbers are its tags.
// ---------------------------------------------------------------------------------------------

const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7, strings: 8 } as const;
const DATA_LOCATION_EXTERNAL = 1;

function modelMessage(model: OnnxModel): ProtoWriter {
  // ModelProto
  const w = new ProtoWriter();
  w.int64(1, model.irVersion ?? DEFAULT_IR_VERSION);
  w.string(2, model.producerName);
  if (model.producerVersion !== undefined) w.string(3, model.producerVersion);
  if (model.docString !== undefined) w.string(6, model.docString);
  w.message(7, graphMessage(model.graph));
  for (const opset of model.opsetImports) {
    // OperatorSetIdProto
    const o = new ProtoWriter();
    o.string(1, opset.domain);
    o.int64(2, opset.version);
    w.message(8, o);
  }
  return w;
}

function graphMessage(graph: OnnxGraph): ProtoWriter {
  // GraphProto
  const w = new ProtoWriter();
  for (const node of graph.nodes) w.message(1, nodeMessage(node));
  w.string(2, graph.name);
  for (const tensor of graph.initializers ?? []) w.message(5, tensorMessage(tensor));
  for (const input of graph.inputs) w.message(11, valueInfoMessage(input));
  for (const output of graph.outputs) w.message(12, valueInfoMessage(output));
  for (const info of graph.valueInfo ?? []) w.message(13, valueInfoMessage(info));
  return w;
}

function nodeMessage(node: OnnxNode): ProtoWriter {
  // NodeProto
  const w = new ProtoWriter();
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  if (node.name !== undefined) w.string(3, node.name);
  w.string(4, node.opType);
  for (const attribute of node.attributes ?? []) w.message(5, attributeMessage(attribute));
  if (node.domain) w.string(7, node.domain);
  return w;
}

function attributeMessage(attribute: OnnxAttribute): ProtoWriter {
  // AttributeProto: name, the value in its kind's field, then the `type` discriminator (tag 20).
  const w = new ProtoWriter();
  w.string(1, attribute.name);
  switch (attribute.kind) {
    case 'float':
      w.float(2, attribute.value);
      break;
    case 'int':
      w.int64(3, attribute.value);
      break;
    case 'string':
      w.string(4, attribute.value);
      break;
    case 'tensor':
      w.message(5, tensorMessage(attribute.value));
      break;
    case 'floats':
      w.packedFloats(7, attribute.value);
      break;
    case 'ints':
      w.packedInt64s(8, attribute.value);
      break;
    case 'strings':
      for (const s of attribute.value) w.string(9, s);
      break;
  }
  w.int64(20, ATTRIBUTE_TYPE[attribute.kind]);
  return w;
}

function tensorMessage(tensor: OnnxTensor): ProtoWriter {
  // TensorProto
  const w = new ProtoWriter();
  w.packedInt64s(1, tensor.dims);
  w.int64(2, tensor.dataType);
  w.string(8, tensor.name);
  const data = tensor.data;
  if (data.location === 'inline') {
    w.bytes(9, data.bytes);
  } else {
    const entries: [string, string][] = [
      ['location', data.file],
      ['offset', String(data.offset)],
    ];
    if (data.length !== undefined) entries.push(['length', String(data.length)]);
    for (const [key, value] of entries) {
      // StringStringEntryProto
      const e = new ProtoWriter();
      e.string(1, key);
      e.string(2, value);
      w.message(13, e);
    }
    w.int64(14, DATA_LOCATION_EXTERNAL);
  }
  return w;
}

function valueInfoMessage(info: OnnxValueInfo): ProtoWriter {
  // TensorShapeProto: always written, even with no dims, because an absent shape means "unknown rank"
  // while an empty one means a scalar.
  const shape = new ProtoWriter();
  for (const dim of info.shape) {
    // TensorShapeProto.Dimension: dim_value (1) or dim_param (2)
    const d = new ProtoWriter();
    if (typeof dim === 'number') d.int64(1, dim);
    else d.string(2, dim);
    shape.message(1, d);
  }
  // TypeProto.Tensor: elem_type, shape
  const tensorType = new ProtoWriter();
  tensorType.int64(1, info.elemType);
  tensorType.message(2, shape);
  // TypeProto: tensor_type
  const type = new ProtoWriter();
  type.message(1, tensorType);
  // ValueInfoProto: name, type
  const w = new ProtoWriter();
  w.string(1, info.name);
  w.message(2, type);
  return w;
}

// ---------------------------------------------------------------------------------------------
// Protobuf wire format (https://protobuf.dev/programming-guides/encoding/)
// ---------------------------------------------------------------------------------------------

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/**
 * Collects one message as a list of chunks: small fields go through a byte scratch list, big byte
 * fields (tensor data) are kept by reference, so each input byte is copied once, in `finish()`.
 */
export class ProtoWriter {
  #chunks: Uint8Array[] = [];
  #scratch: number[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** int32/int64/enum/bool fields: all plain varints (no zigzag in ONNX). */
  int64(field: number, value: number): void {
    this.#tag(field, WIRE_VARINT);
    this.#varint(value);
  }

  float(field: number, value: number): void {
    this.#tag(field, WIRE_FIXED32);
    this.#float32(value);
  }

  string(field: number, value: string): void {
    this.bytes(field, utf8Encode(value));
  }

  bytes(field: number, value: Uint8Array): void {
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#varint(value.length);
    this.#append(value);
  }

  message(field: number, child: ProtoWriter): void {
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#varint(child.length);
    child.#flush();
    for (const chunk of child.#chunks) this.#append(chunk);
  }

  /** Packed repeated int64 (one length-delimited field); parsers accept it for proto2 `repeated int64`. */
  packedInt64s(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    const body = new ProtoWriter();
    for (const v of values) body.#varint(v);
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#varint(body.length);
    body.#flush();
    for (const chunk of body.#chunks) this.#append(chunk);
  }

  packedFloats(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#varint(values.length * 4);
    for (const v of values) this.#float32(v);
  }

  finish(): Uint8Array {
    this.#flush();
    if (this.#chunks.length === 1 && this.#chunks[0]) return this.#chunks[0];
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  #tag(field: number, wireType: number): void {
    this.#varint(field * 8 + wireType);
  }

  /** Varint of a safe integer; negatives as 64-bit two's complement (10 bytes), as protobuf int64 does. */
  #varint(value: number): void {
    if (!Number.isSafeInteger(value)) throw new RangeError(`Not a safe integer for a protobuf varint: ${value}`);
    if (value >= 0 && value <= 0x7fffffff) {
      let v = value;
      while (v > 0x7f) {
        this.#byte((v & 0x7f) | 0x80);
        v >>>= 7;
      }
      this.#byte(v);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    while (v > 0x7fn) {
      this.#byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.#byte(Number(v));
  }

  #float32(value: number): void {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    for (const b of bytes) this.#byte(b);
  }

  #byte(b: number): void {
    this.#scratch.push(b);
    this.#length += 1;
  }

  #append(chunk: Uint8Array): void {
    if (chunk.length < 64) {
      for (const b of chunk) this.#scratch.push(b);
    } else {
      this.#flush();
      this.#chunks.push(chunk);
    }
    this.#length += chunk.length;
  }

  #flush(): void {
    if (this.#scratch.length === 0) return;
    this.#chunks.push(Uint8Array.from(this.#scratch));
    this.#scratch = [];
  }
}

/** UTF-8 without `TextEncoder` (not in the ES library); lone surrogates become U+FFFD like TextEncoder. */
export function utf8Encode(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else {
        code = 0xfffd;
      }
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      code = 0xfffd;
    }
    if (code < 0x80) {
      out.push(code);
    } else if (code < 0x800) {
      out.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      out.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
    } else {
      out.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 0x3f), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
    }
  }
  return Uint8Array.from(out);
}
