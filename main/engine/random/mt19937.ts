/**
 * The Mersenne Twister MT19937 (Matsumoto & Nishimura 1998) as torch's CPU generator runs it
 * (`aten/src/ATen/core/MT19937RNGEngine.h`): 624 words of state, seeded from the LOW 32 bits of the
 * 64-bit seed with Knuth's multiplier, tempered 32-bit outputs. Same stream as C++ `std::mt19937`.
 */

const STATE_WORDS = 624;
const SHIFT_WORDS = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
/** Knuth's seeding multiplier (TAOCP vol. 2, 3rd ed., p. 106), as in the reference init_genrand. */
const SEED_MULTIPLIER = 1812433253;
const LOW_32_BITS = 0xffffffffn;

export class Mt19937 {
  readonly #state = new Uint32Array(STATE_WORDS);
  /** Words left before the next twist; torch starts at 1 so the first draw twists. */
  #left = 1;
  #next = 0;

  /** `seed` is torch's uint64 seed; like torch, only its low 32 bits reach the state. */
  constructor(seed: bigint) {
    const state = this.#state;
    state[0] = Number(seed & LOW_32_BITS);
    for (let j = 1; j < STATE_WORDS; j++) {
      const previous = state[j - 1]!;
      state[j] = Math.imul(SEED_MULTIPLIER, previous ^ (previous >>> 30)) + j;
    }
  }

  /** The next tempered 32-bit output, as an unsigned number. */
  nextUint32(): number {
    if (--this.#left === 0) this.#twist();
    let y = this.#state[this.#next++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Regenerates all 624 words (torch's `next_state`). */
  #twist(): void {
    const state = this.#state;
    this.#left = STATE_WORDS;
    this.#next = 0;
    for (let j = 0; j < STATE_WORDS; j++) {
      const mixed = (state[j]! & UPPER_MASK) | (state[(j + 1) % STATE_WORDS]! & LOWER_MASK);
      const twisted = (mixed >>> 1) ^ (state[(j + 1) % STATE_WORDS]! & 1 ? MATRIX_A : 0);
      state[j] = state[(j + SHIFT_WORDS) % STATE_WORDS]! ^ twisted;
    }
  }
}
