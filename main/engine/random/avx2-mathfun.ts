/**
 * float32 `log` and `sincos` exactly as torch's AVX2 `normal_fill_16_AVX2` computes them: the Cephes
 * polynomials of `avx_mathfun.h` (Pommier's sse_mathfun, AVX port by Garberoglio), one lane at a time.
 * Every operation rounds to float32; the multiply-adds that GCC fuses when it builds torch with FMA
 * (`-mfma`, contraction on) are fused here too. This is what makes `torchRandn` bit-exact: the
 * correctly rounded `Math.log`/`Math.sin` differ from these in the last bit for ~1 value in 3.
 */
import { fmaFloat32 as fma } from './float32-fma';

const f32 = Math.fround;

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

function bitsOf(x: number): number {
  scratchFloat[0] = x;
  return scratchBits[0]!;
}

function fromBits(bits: number): number {
  scratchBits[0] = bits >>> 0;
  return scratchFloat[0]!;
}

const MIN_NORMAL_BITS = 0x00800000;
const EXPONENT_MASK = 0x7f800000;
const EXPONENT_BIAS = 0x7f;
const HALF_BITS = 0x3f000000;
const SQRT_HALF = f32(Math.SQRT1_2); // avx_mathfun's 0.707106781186547524
/** Cephes logf: log(1 + x) ≈ x − x²/2 + x³·P(x) on [√½ − 1, √2 − 1]. */
const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
  3.3333331174e-1,
].map(f32);
/** ln 2 split in two (Cody–Waite): a short head that multiplies exactly and a tail. */
const LN2_HEAD = f32(0.693359375);
const LN2_TAIL = f32(-2.1219444e-4);

/** Natural logarithm of a positive float32 (torch feeds 1 − u with u ∈ [0, 1), so never 0). */
export function log256(value: number): number {
  let x = Math.max(f32(value), fromBits(MIN_NORMAL_BITS));
  const bits = bitsOf(x);
  // x = m · 2^k with m ∈ [0.5, 1): keep the mantissa, count the exponent.
  x = fromBits((bits & ~EXPONENT_MASK) | HALF_BITS);
  let e = f32((bits >>> 23) - EXPONENT_BIAS + 1);
  if (x < SQRT_HALF) {
    e = f32(e - 1);
    x = f32(f32(x - 1) + x);
  } else {
    x = f32(x - 1);
  }
  const z = f32(x * x);
  let y = LOG_P[0]!;
  for (let i = 1; i < LOG_P.length; i++) y = fma(y, x, LOG_P[i]!);
  y = f32(y * x);
  y = fma(y, z, f32(e * LN2_TAIL));
  y = f32(y - f32(z * 0.5));
  x = f32(x + y);
  return fma(e, LN2_HEAD, x);
}

/** avx_mathfun's 4/π literal (short of the double 4/π, the same float32). */
const FOUR_OVER_PI = f32(1.27323954473516);
/** −π/4 split in three for the extended-precision reduction x − j·π/4. */
const MINUS_PI_4_PARTS = [f32(-0.78515625), f32(-2.4187564849853515625e-4), f32(-3.774894977445941e-8)];
const SIN_P = [f32(-1.9515295891e-4), f32(8.3321608736e-3), f32(-1.6666654611e-1)];
const COS_P = [f32(2.443315711809948e-5), f32(-1.388731625493765e-3), f32(4.166664568298827e-2)];

/** [sin x, cos x] for a float32 x of moderate size (torch passes θ = 2π·u ∈ [0, 2π)). */
export function sincos256(value: number): [number, number] {
  const angle = f32(value);
  let x = Math.abs(angle);
  // Octant j, rounded up to even, and the reduced argument x − j·π/4.
  let octant = Math.trunc(f32(x * FOUR_OVER_PI));
  octant = (octant + 1) & ~1;
  const j = f32(octant);
  for (const part of MINUS_PI_4_PARTS) x = fma(j, part, x);
  const sinNegative = angle < 0 !== ((octant & 4) !== 0);
  const cosNegative = (~(octant - 2) & 4) !== 0;
  const useSinPolynomialForSin = (octant & 2) === 0;

  const z = f32(x * x);
  let cosPoly = fma(COS_P[0]!, z, COS_P[1]!);
  cosPoly = fma(cosPoly, z, COS_P[2]!);
  cosPoly = f32(cosPoly * z);
  cosPoly = fma(cosPoly, z, -f32(z * 0.5));
  cosPoly = f32(cosPoly + 1);

  let sinPoly = fma(SIN_P[0]!, z, SIN_P[1]!);
  sinPoly = fma(sinPoly, z, SIN_P[2]!);
  sinPoly = f32(sinPoly * z);
  sinPoly = fma(sinPoly, x, x);

  const sin = useSinPolynomialForSin ? sinPoly : cosPoly;
  const cos = useSinPolynomialForSin ? cosPoly : sinPoly;
  return [sinNegative ? -sin : sin, cosNegative ? -cos : cos];
}
