import { createRecipe, type Recipe } from '../../main/gallery/recipe';

/** A valid recipe; `overrides` replace top-level fields. */
export function sampleRecipe(overrides: Partial<Recipe> = {}): Recipe {
  return createRecipe({
    appVersion: '0.1.0',
    model: { name: 'tiny-blipdiffusion', folder: '/models/tiny', hash: 'a'.repeat(64) },
    subject: { name: 'Rex', category: 'dog', reference: { sha256: 'b'.repeat(64) } },
    targetSubject: 'dog',
    prompt: 'on the beach, golden hour',
    negativePrompt: 'blurry',
    seed: '42',
    steps: 25,
    guidanceScale: 7.5,
    scheduler: 'pndm',
    width: 128,
    height: 96,
    promptStrength: 1,
    promptReps: 20,
    device: 'cpu',
    durationMs: 1234,
    createdAt: '2025-01-02T03:04:05.678Z',
    ...overrides,
  });
}
