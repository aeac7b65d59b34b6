/**
 * Test-side helpers for the network builders: a minimal safetensors header reader that yields a
 * WeightCatalog (the real reader lives in main/engine/weights; this one keeps the net tests independent
 * of it), a minimal safetensors writer for generated configs, a seeded generator and error metrics.
 */
import { expect } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { TensorListing, WeightCatalog, WeightDType, WeightEntry } from '../../main/engine/nets/weight-catalog';

const HEADER_LENGTH_BYTES = 8;
const HEADER_ALIGNMENT = 8;

/** The catalog of one safetensors file; locations are relative to the file's folder. */
export function readSafetensorsCatalog(path: string): WeightCatalog {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + headerLength).toString('utf8')) as Record<
    string,
    { dtype: WeightDType; shape: number[]; data_offsets: [number, number] }
  >;
  const entries = new Map<string, WeightEntry>();
  for (const [name, tensor] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = tensor.data_offsets;
    entries.set(name, { dtype: tensor.dtype, shape: tensor.shape, file: basename(path), offset: HEADER_LENGTH_BYTES + headerLength + begin, byteLength: end - begin });
  }
  return { names: () => [...entries.keys()], lookup: (name) => entries.get(name) };
}

export interface FixtureTensor {
  name: string;
  dtype: 'F32' | 'F16' | 'I64';
  shape: readonly number[];
  /** F32/F16: float values (F16 rounds them); I64: integers. */
  values: ArrayLike<number>;
}

/** Writes a safetensors file (header padded with spaces to a multiple of 8, tensors in the given order). */
export function writeSafetensors(path: string, tensors: readonly FixtureTensor[]): void {
  const fields: string[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const data = encodeTensor(t);
    fields.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + data.length}]}`);
    chunks.push(data);
    offset += data.length;
  }
  let header = `{"__metadata__":{"format":"pt"},${fields.join(',')}}`;
  header += ' '.repeat((HEADER_ALIGNMENT - (header.length % HEADER_ALIGNMENT)) % HEADER_ALIGNMENT);
  const prefix = Buffer.alloc(HEADER_LENGTH_BYTES);
  prefix.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(path, Buffer.concat([prefix, Buffer.from(header, 'utf8'), ...chunks]));
}

function encodeTensor(t: FixtureTensor): Uint8Array {
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (t.values.length !== count) throw new Error(`${t.name}: ${t.values.length} values for shape [${t.shape.join(', ')}]`);
  const size = t.dtype === 'F16' ? 2 : t.dtype === 'F32' ? 4 : 8;
  const out = new Uint8Array(count * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    const v = t.values[i] as number;
    if (t.dtype === 'F32') view.setFloat32(i * size, v, true);
    else if (t.dtype === 'F16') view.setUint16(i * size, float16Bits(v), true);
    else view.setBigInt64(i * size, BigInt(v), true);
  }
  return out;
}

/** IEEE half-precision bits of `value` (round to nearest even; values here are small and normal). */
export function float16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (value === 0) return sign;
  if (exponent <= 0 || exponent >= 0x1f) throw new Error(`float16Bits: ${value} is outside the normal half range this helper handles`);
  let half = sign | (exponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half += 1;
  return half;
}

/** A small deterministic generator (mulberry32) for fixture weights and inputs. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Approximately normal values (sum of uniforms), scaled. */
export function randomNormalish(random: () => number, count: number, scale: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (random() + random() + random() - 1.5) * 2 * scale;
  return out;
}

export function maxAbs(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i] as number));
  return max;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

/** The issue's parity bound for a reference `b`: 1e-4 · max|b| + 1e-6. */
export function parityBound(reference: ArrayLike<number>): number {
  return 1e-4 * maxAbs(reference) + 1e-6;
}

/** The tensors of a real-shapes/*.json listing. */
export function realShapesListing(json: unknown): TensorListing[] {
  const tensors = (json as { tensors?: unknown }).tensors;
  if (!Array.isArray(tensors)) throw new Error('real-shapes listing has no tensors array');
  return tensors as TensorListing[];
}

/** The issue's parity bound, with the measured error in the failure message. */
export function expectWithinParityBound(actual: Float32Array, reference: Float32Array, what: string): void {
  const error = maxAbsDiff(actual, reference);
  expect(error, `${what}: max |a − b| = ${error}, bound ${parityBound(reference)}`).toBeLessThanOrEqual(parityBound(reference));
}
