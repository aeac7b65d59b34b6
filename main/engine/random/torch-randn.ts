/**
 * `torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed))` for float32, bit for bit, so
 * that "seed 42" here means what it means in diffusers/LAVIS on CPU (parity kit `rng/`, torch 1.13).
 *
 * torch's CPU generator is an MT19937 (see mt19937.ts) and `randn` fills a float32 tensor one of two ways
 * (`aten/src/ATen/native/cpu/DistributionTemplates.h`, `normal_kernel`):
 * - 16 elements or more: one 24-bit uniform per element, u = (r & 0xFFFFFF) / 2^24, then Box–Muller over
 *   blocks of 16 (u[j] with u[j + 8] gives elements j and j + 8); when the size is not a multiple of 16,
 *   16 fresh uniforms are drawn and the LAST 16 elements are recomputed from them. On x86 with AVX2
 *   (the kit's build and nearly every desktop CPU) the maths is the AVX2 kernel's float32 Cephes code,
 *   reproduced in avx2-mathfun.ts. (A torch running the non-AVX2 kernel differs in the last bit.)
 * - fewer than 16 elements: double-precision Box–Muller from two 53-bit uniforms (two 32-bit draws
 *   each), returning r·cos θ and caching r·sin θ in the generator for the next element, even across
 *   calls (`normal_distribution<double>` and `next_double_normal_sample`).
 *
 * `randint(low, high, size)` (int64, `random_from_to_kernel`, `uniform_int_from_to_distribution` in
 * `aten/src/ATen/core/DistributionsHelper.h`) fills element by element (`cpu_serial_kernel`): with
 * range = high − low, one 32-bit draw per element when range < 2^32, else one 64-bit draw (two words,
 * the first in the high half), and the value is draw % range + low. It neither reads nor clears the
 * cached normal, so it interleaves with `randn` exactly as torch's calls do.
 */
import { log256, sincos256 } from './avx2-mathfun';
import { Mt19937 } from './mt19937';

/** A seed as `Generator.manual_seed` accepts it: an integer in [−2^63, 2^64); negatives wrap like int64 → uint64. */
export type TorchSeed = bigint | number;

const UINT64_LIMIT = 1n << 64n;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
/** From this range on, `randint` draws 64 bits per element instead of 32. */
const WIDE_RANGE = 1n << 32n;
/** Box–Muller block of the vectorised fill: 8 pairs. */
const BLOCK = 16;
const HALF_BLOCK = BLOCK / 2;
const FLOAT_UNIFORM_BITS = 24; // std::numeric_limits<float>::digits
const DOUBLE_UNIFORM_HIGH_BITS = 53 - 32; // a 53-bit uniform takes 21 bits of the first word, 32 of the second
const TWO_PI_FLOAT = Math.fround(2 * Math.PI);

const f32 = Math.fround;

/** The uint64 torch stores for a seed (Python ints below 0 are read as int64 and reinterpreted). */
export function torchSeedToUint64(seed: TorchSeed): bigint {
  if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
    throw new RangeError(`seed ${seed} is not a safe integer: pass a bigint for seeds beyond 2^53`);
  }
  const value = BigInt(seed);
  if (value < INT64_MIN || value >= UINT64_LIMIT) throw new RangeError(`seed ${value} is outside [-2^63, 2^64)`);
  return value < 0n ? value + UINT64_LIMIT : value;
}

function elementCount(shape: readonly number[], op = 'randn'): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) throw new RangeError(`${op}: bad dimension ${dim} in shape [${shape.join(', ')}]`);
    count *= dim;
  }
  return count;
}

/** torch's CPU `Generator`: one MT19937 stream plus the cached second Box–Muller value of the scalar path. */
export class TorchGenerator {
  #engine: Mt19937;
  #initialSeed: bigint;
  #cachedNormal: number | null = null;

  constructor(seed: TorchSeed) {
    this.#initialSeed = torchSeedToUint64(seed);
    this.#engine = new Mt19937(this.#initialSeed);
  }

  /** The seed as torch's `initial_seed()` reports it (uint64). */
  get initialSeed(): bigint {
    return this.#initialSeed;
  }

  /** Restarts the stream, like `Generator.manual_seed` (which also drops the cached normal). */
  manualSeed(seed: TorchSeed): this {
    this.#initialSeed = torchSeedToUint64(seed);
    this.#engine = new Mt19937(this.#initialSeed);
    this.#cachedNormal = null;
    return this;
  }

  /** `torch.randn(shape, generator=this, dtype=torch.float32)`, continuing this generator's stream. */
  randn(shape: readonly number[]): Float32Array {
    const size = elementCount(shape);
    const out = new Float32Array(size);
    if (size >= BLOCK) this.#fillVectorised(out);
    else for (let i = 0; i < size; i++) out[i] = this.#nextDoubleNormal();
    return out;
  }

  /**
   * `torch.randint(low, high, size, generator=this)` (int64, `high` exclusive), continuing this
   * generator's stream; `size` is a shape or an element count; bigint bounds reach the whole int64 range.
   */
  randint(low: bigint | number, high: bigint | number, size: readonly number[] | number): BigInt64Array {
    const shape = typeof size === 'number' ? [size] : size;
    const from = int64Bound('low', low);
    const to = int64Bound('high', high);
    if (from >= to) throw new RangeError(`randint: low (${from}) must be less than high (${to})`);
    const range = to - from;
    const out = new BigInt64Array(elementCount(shape, 'randint'));
    for (let i = 0; i < out.length; i++) {
      const draw = range >= WIDE_RANGE ? this.#nextUint64() : BigInt(this.#engine.nextUint32());
      // torch adds in uint64 and casts to int64: the sum wraps exactly like asIntN.
      out[i] = BigInt.asIntN(64, (draw % range) + from);
    }
    return out;
  }

  /** `random64()`: two 32-bit draws, the first one in the high word. */
  #nextUint64(): bigint {
    const high = BigInt(this.#engine.nextUint32());
    return (high << 32n) | BigInt(this.#engine.nextUint32());
  }

  #nextFloatUniform(): number {
    return (this.#engine.nextUint32() & ((1 << FLOAT_UNIFORM_BITS) - 1)) / 2 ** FLOAT_UNIFORM_BITS;
  }

  /** `random64()` (first draw in the high word) masked to 53 bits, times 2^-53. */
  #nextDoubleUniform(): number {
    const high = this.#engine.nextUint32() & ((1 << DOUBLE_UNIFORM_HIGH_BITS) - 1);
    const low = this.#engine.nextUint32();
    return (high * 2 ** 32 + low) / 2 ** 53;
  }

  #fillVectorised(out: Float32Array): void {
    const size = out.length;
    for (let i = 0; i < size; i++) out[i] = this.#nextFloatUniform();
    for (let start = 0; start + BLOCK <= size; start += BLOCK) boxMullerBlock(out, start);
    if (size % BLOCK !== 0) {
      const start = size - BLOCK;
      for (let i = start; i < size; i++) out[i] = this.#nextFloatUniform();
      boxMullerBlock(out, start);
    }
  }

  #nextDoubleNormal(): number {
    if (this.#cachedNormal !== null) {
      const cached = this.#cachedNormal;
      this.#cachedNormal = null;
      return cached;
    }
    const u1 = this.#nextDoubleUniform();
    const u2 = this.#nextDoubleUniform();
    const radius = Math.sqrt(-2 * Math.log(1 - u2));
    const theta = 2 * Math.PI * u1;
    this.#cachedNormal = radius * Math.sin(theta);
    return radius * Math.cos(theta);
  }
}

/** A bound of `randint`: an int64 (torch's argument type), as a number up to 2^53 or a bigint. */
function int64Bound(name: string, value: bigint | number): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`randint: ${name} ${value} is not a safe integer: pass a bigint beyond 2^53`);
  const bound = BigInt(value);
  if (bound < INT64_MIN || bound > INT64_MAX) throw new RangeError(`randint: ${name} ${bound} is outside the int64 range`);
  return bound;
}

/** Box–Muller in place over out[start .. start + 16): uniforms in, standard normals out (float32). */
function boxMullerBlock(out: Float32Array, start: number): void {
  for (let j = start; j < start + HALF_BLOCK; j++) {
    const u1 = f32(1 - out[j]!); // [0, 1) → (0, 1] for the log
    const u2 = out[j + HALF_BLOCK]!;
    const radius = f32(Math.sqrt(f32(-2 * log256(u1))));
    const [sin, cos] = sincos256(f32(TWO_PI_FLOAT * u2));
    out[j] = f32(radius * cos);
    out[j + HALF_BLOCK] = f32(radius * sin);
  }
}

/** `torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed))` as float32. */
export function torchRandn(seed: TorchSeed, shape: readonly number[]): Float32Array {
  return new TorchGenerator(seed).randn(shape);
}
