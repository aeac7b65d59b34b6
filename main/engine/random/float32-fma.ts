/**
 * Single-precision fused multiply-add, fma(a, b, c) = a·b + c rounded once to float32.
 *
 * torch's x86 CPU kernels are built with FMA enabled, and the compiler fuses a multiply followed by an
 * add into one instruction; matching torch bit for bit (its Box–Muller maths, its `linspace`) means
 * rounding those sums once, not twice.
 */

const f32 = Math.fround;

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/** The float32 next to `x` (a finite float32) in the direction of `towards`. */
function float32Neighbour(x: number, towards: number): number {
  scratchFloat[0] = x;
  if (x === 0) {
    scratchBits[0] = towards > 0 ? 1 : 0x80000001;
  } else if (towards > x === x > 0) {
    scratchBits[0]! += 1; // away from zero
  } else {
    scratchBits[0]! -= 1;
  }
  return scratchFloat[0]!;
}

/** fma for float32 operands (any numbers are rounded to float32 first, as the C types would be). */
export function fmaFloat32(a: number, b: number, c: number): number {
  // Two float32 factors have at most 48 significant bits: their product is exact in a double.
  const product = f32(a) * f32(b);
  const addend = f32(c);
  const sum = product + addend;
  // Knuth's TwoSum: the exact error of the double addition.
  const virtualAddend = sum - product;
  const error = product - (sum - virtualAddend) + (addend - virtualAddend);
  const rounded = f32(sum);
  if (error === 0 || rounded === sum || !Number.isFinite(sum)) return rounded;
  // Rounding the double to float32 is wrong only when the double sits exactly halfway between two
  // floats: then the dropped error decides the side (any other halfway point would be a nearer double).
  const other = float32Neighbour(rounded, sum);
  if (sum !== (rounded + other) / 2) return rounded;
  return error > 0 === sum > rounded ? other : rounded;
}
