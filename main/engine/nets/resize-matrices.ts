/**
 * PyTorch's `F.interpolate` along one axis as a dense [out × in] matrix (row-major, float64): resizing
 * an image is then Rₕ · X · R_wᵀ, two MatMuls of the graph builder (which autodiff already knows), or
 * the same two passes in TypeScript. The coordinates and weights follow ATen's CPU kernels (UpSample.h,
 * UpSampleKernel.cpp, torch 1.13):
 *
 *  bicubic, align_corners=False: scale = in/out, source x = scale·(i + 0.5) − 0.5, x₀ = floor(x),
 *    t = x − x₀, taps x₀−1…x₀+2 clamped to the border, Keys' cubic convolution with A = −0.75;
 *  bilinear, align_corners=True: scale = (in − 1)/(out − 1) (0 when out = 1), source x = scale·i,
 *    x₀ = trunc(x), λ = min(x − x₀, 1), taps x₀ and x₀ + 1 (x₀ again at the last input), weights
 *    1 − λ and λ.
 *
 * ATen evaluates them in float32 for float32 tensors, where the far cubic tap loses digits to
 * cancellation (its weights differ from the exact ones by up to ~5e-7); here they are exact to float64,
 * which moves results by float32 rounding only (the parity tests' tolerances cover it).
 */

/** ATen's cubic convolution constant (upsample_bicubic2d): A = −0.75, not Pillow's −0.5. */
export const TORCH_CUBIC_A = -0.75;

/** Keys' cubic convolution weights of the 4 taps x₀−1…x₀+2 for a fractional offset t ∈ [0, 1) (get_cubic_upsample_coefficients). */
export function cubicWeights(t: number, a: number = TORCH_CUBIC_A): [number, number, number, number] {
  const near = (x: number) => ((a + 2) * x - (a + 3)) * x * x + 1;
  const far = (x: number) => ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

function checkSizes(inSize: number, outSize: number): void {
  if (!Number.isSafeInteger(inSize) || !Number.isSafeInteger(outSize) || inSize < 1 || outSize < 1) throw new Error(`cannot resize ${inSize} → ${outSize}: sizes must be positive integers`);
}

/** The 4 source indices (border-clamped) and weights of each output index: [outSize × 4] each. */
export interface CubicTaps {
  indices: Int32Array;
  weights: Float64Array;
}

/** `interpolate(mode='bicubic', align_corners=False)` to a given size along one axis, as 4 taps per output. */
export function bicubicTaps(inSize: number, outSize: number): CubicTaps {
  checkSizes(inSize, outSize);
  const indices = new Int32Array(outSize * 4);
  const weights = new Float64Array(outSize * 4);
  const scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const source = scale * (i + 0.5) - 0.5;
    const start = Math.min(Math.floor(source), inSize - 1);
    const w = cubicWeights(Math.min(Math.max(source - start, 0), 1));
    for (let k = 0; k < 4; k++) {
      indices[i * 4 + k] = Math.min(Math.max(start - 1 + k, 0), inSize - 1);
      weights[i * 4 + k] = w[k]!;
    }
  }
  return { indices, weights };
}

/** `interpolate(mode='bicubic', align_corners=False)` to a given size along one axis: [outSize × inSize]. */
export function bicubicMatrix(inSize: number, outSize: number): Float64Array {
  const { indices, weights } = bicubicTaps(inSize, outSize);
  const matrix = new Float64Array(outSize * inSize);
  for (let t = 0; t < indices.length; t++) matrix[Math.floor(t / 4) * inSize + indices[t]!]! += weights[t]!;
  return matrix;
}

/** `interpolate(mode='bilinear', align_corners=True)` to a given size along one axis: [outSize × inSize]. */
export function bilinearAlignCornersMatrix(inSize: number, outSize: number): Float64Array {
  checkSizes(inSize, outSize);
  const matrix = new Float64Array(outSize * inSize);
  const scale = outSize > 1 ? (inSize - 1) / (outSize - 1) : 0;
  for (let i = 0; i < outSize; i++) {
    const source = scale * i;
    const first = Math.min(Math.trunc(source), inSize - 1);
    const lambda = Math.min(Math.max(source - first, 0), 1);
    const second = first < inSize - 1 ? first + 1 : first;
    matrix[i * inSize + first]! += 1 - lambda;
    matrix[i * inSize + second]! += lambda;
  }
  return matrix;
}

/** The transpose of a row-major [rows × cols] matrix. */
export function transposeMatrix(matrix: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = matrix[r * cols + c]!;
  return out;
}
