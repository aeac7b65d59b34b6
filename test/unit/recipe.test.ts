import { describe, expect, it } from 'vitest';
import { a1111Parameters, InvalidRecipeError, parseRecipe, recipeToGenerateRequest, subjectPhotoHashes } from '../../main/gallery/recipe';
import type { ModelFolder } from '../../main/models/model-folder';
import { sampleRecipe } from '../helpers/recipe-fixtures';

/** The recipe as it would come out of a PNG: plain JSON, then edited by a forger. */
const forged = (edit: (json: Record<string, unknown>) => void): unknown => {
  const json = JSON.parse(JSON.stringify(sampleRecipe())) as Record<string, unknown>;
  edit(json);
  return json;
};
const problemsOf = (value: unknown): string[] => {
  try {
    parseRecipe(value);
  } catch (error) {
    if (error instanceof InvalidRecipeError) return [...error.problems];
    throw error;
  }
  return [];
};

describe('recipe schema', () => {
  it('accepts a valid recipe, including both subject forms, a control image and the largest seed', () => {
    const recipe = sampleRecipe();
    expect(parseRecipe(JSON.parse(JSON.stringify(recipe)))).toEqual(recipe);
    expect(() => sampleRecipe({ seed: (2n ** 64n - 1n).toString(), control: { sha256: 'c'.repeat(64), scale: 0.8 } })).not.toThrow();
    expect(() => sampleRecipe({ subject: { category: 'dog', photos: [{ sha256: 'd'.repeat(64), weight: 1 }, { sha256: 'e'.repeat(64), weight: 0.5 }] } })).not.toThrow();
  });

  it('refuses forged fields: unknown keys, another app, an unknown version, both subject forms, bad hashes', () => {
    expect(problemsOf(forged((j) => (j.script = 'rm -rf /')))).toEqual([expect.stringMatching(/script|Unrecognized/i)]);
    expect(problemsOf(forged((j) => (j.app = 'Other Studio')))[0]).toMatch(/^app:/);
    expect(problemsOf(forged((j) => (j.recipeVersion = 7)))[0]).toMatch(/^recipeVersion:/);
    expect(problemsOf(forged((j) => ((j.subject as Record<string, unknown>).photos = [{ sha256: 'd'.repeat(64), weight: 1 }]))).length).toBeGreaterThan(0);
    expect(problemsOf(forged((j) => ((j.model as Record<string, unknown>).hash = 'A'.repeat(64))))[0]).toMatch(/^model\.hash:.*SHA-256/);
    expect(problemsOf(forged((j) => (j.scheduler = 'lms')))[0]).toMatch(/^scheduler:/);
    expect(problemsOf(forged((j) => (j.device = '../../etc')))[0]).toMatch(/^device:/);
    expect(problemsOf(forged((j) => (j.createdAt = 'yesterday')))[0]).toMatch(/^createdAt:/);
    expect(problemsOf(null)).toEqual([expect.stringMatching(/^\(recipe\):/)]);
    expect(problemsOf([1, 2])).toHaveLength(1);
  });

  it('reads version 1 recipes, and writes version 2 only for a subject mix (which version 1 cannot hold)', () => {
    const photos = [{ sha256: 'd'.repeat(64), weight: 1 }];
    const plain = sampleRecipe({ subject: { category: 'dog', photos } });
    expect(plain.recipeVersion).toBe(1);
    expect(parseRecipe({ ...JSON.parse(JSON.stringify(plain)), recipeVersion: 1 })).toEqual(plain);
    const mix = { subject: { name: 'Tom', category: 'cat', photos: [{ sha256: 'e'.repeat(64), weight: 0.5 }] }, ratio: 0.7 };
    const mixed = sampleRecipe({ subject: { category: 'dog', photos }, mix });
    expect(mixed).toMatchObject({ recipeVersion: 2, mix });
    expect(parseRecipe(JSON.parse(JSON.stringify(mixed)))).toEqual(mixed);
    expect(problemsOf({ ...mixed, recipeVersion: 1 })).toEqual([expect.stringMatching(/^mix: mixing subjects needs recipe version 2/)]);
    expect(problemsOf({ ...mixed, subject: { category: 'dog', reference: { sha256: 'b'.repeat(64) } } })).toEqual([expect.stringMatching(/^mix: only a library subject/)]);
    expect(problemsOf({ ...mixed, mix: { ...mix, ratio: 1.5 } })[0]).toMatch(/^mix\.ratio:/);
    expect(problemsOf({ ...mixed, mix: { ...mix, subject: { ...mix.subject, photos: [{ sha256: 'e'.repeat(64), weight: 0 }] } } })[0]).toMatch(/^mix\.subject\.photos: at least one photo/);
    expect(a1111Parameters(mixed)).toMatch(/Subject: dog, Mixed with: cat, Mix ratio: 0\.7,/);
  });

  it('writes version 4 only for a LoRA or a given subject embedding, and refuses them in earlier versions', () => {
    const lora = { sha256: 'f'.repeat(64), scale: 0.5 };
    const withLora = sampleRecipe({ lora });
    expect(withLora).toMatchObject({ recipeVersion: 4, lora });
    expect(parseRecipe(JSON.parse(JSON.stringify(withLora)))).toEqual(withLora);
    expect(problemsOf({ ...withLora, recipeVersion: 3 })).toEqual([expect.stringMatching(/^lora: a LoRA needs recipe version 4/)]);
    expect(sampleRecipe({ lora: { ...lora, scale: -1 } }).lora?.scale).toBe(-1);
    expect(problemsOf({ ...withLora, lora: { ...lora, scale: 101 } })[0]).toMatch(/^lora\.scale:/);
    expect(problemsOf({ ...withLora, lora: { ...lora, path: '/tmp/x' } }).length).toBeGreaterThan(0);
    expect(a1111Parameters(withLora)).toMatch(/Subject: dog, LoRA hash: ffffffffff, LoRA scale: 0\.5, Version:/);

    const embedding = sampleRecipe({ subject: { name: 'Rex', category: 'dog', embedding: { sha256: 'e'.repeat(64) } } });
    expect(embedding.recipeVersion).toBe(4);
    expect(parseRecipe(JSON.parse(JSON.stringify(embedding)))).toEqual(embedding);
    expect(subjectPhotoHashes(embedding.subject)).toEqual([]);
    expect(problemsOf({ ...embedding, recipeVersion: 1 })).toEqual([expect.stringMatching(/^subject\.embedding: a given subject embedding needs recipe version 4/)]);
    expect(problemsOf({ ...embedding, subject: { ...embedding.subject, reference: { sha256: 'b'.repeat(64) } } }).length).toBeGreaterThan(0);
    const mix = { subject: { category: 'cat', photos: [{ sha256: 'd'.repeat(64), weight: 1 }] }, ratio: 0.5 };
    expect(problemsOf({ ...embedding, mix })).toEqual([expect.stringMatching(/^mix: only a library subject/)]);
    expect(a1111Parameters(embedding)).toMatch(/Subject: dog, Subject embedding hash: eeeeeeeeee, Version:/);
    // The newest feature decides the version: device notes (3) with a LoRA (4) is 4.
    expect(sampleRecipe({ lora, deviceNotes: ['attention lowered'] }).recipeVersion).toBe(4);
  });

  it('writes version 5 only for library adapters (a fine-tune of a library subject, style LoRAs), and refuses them earlier', () => {
    const finetune = { sha256: 'a'.repeat(64), scale: 0.8, name: 'Standard · 80 steps at 256²' };
    const styles = [{ sha256: 'b'.repeat(64), scale: -0.5, name: 'ink' }];
    const library = { name: 'Rex', category: 'dog', photos: [{ sha256: 'c'.repeat(64), weight: 1 }] };
    const tuned = sampleRecipe({ subject: library, finetune, styles });
    expect(tuned.recipeVersion).toBe(5);
    expect(parseRecipe(JSON.parse(JSON.stringify(tuned)))).toEqual(tuned);
    expect(problemsOf({ ...tuned, recipeVersion: 4 })).toEqual([
      expect.stringMatching(/^finetune: library adapters need recipe version 5/),
      expect.stringMatching(/^styles: library adapters need recipe version 5/),
    ]);
    expect(problemsOf({ ...tuned, finetune: { ...finetune, scale: -0.1 } })[0]).toMatch(/^finetune\.scale:/);
    expect(problemsOf({ ...tuned, styles: [] })[0]).toMatch(/^styles:/);
    expect(problemsOf({ ...tuned, subject: { name: 'Rex', category: 'dog', embedding: { sha256: 'e'.repeat(64) } } })).toEqual([expect.stringMatching(/^finetune: a fine-tune applies to a library subject/)]);
    expect(a1111Parameters(tuned)).toMatch(/Fine-tune hash: aaaaaaaaaa, Fine-tune strength: 0\.8, Lora ink: -0\.5, Version:/);
    expect(sampleRecipe().recipeVersion).toBeLessThan(5);
  });

  it('writes version 6 only for control details (how the map was made, its step window, a ControlNet of its own), and refuses them earlier', () => {
    const plainControl = sampleRecipe({ control: { sha256: 'c'.repeat(64), scale: 1 } });
    expect(plainControl.recipeVersion).toBeLessThan(6);
    const control = { sha256: 'c'.repeat(64), scale: 0.9, end: 0.6, mode: 'canny' as const, source: { sha256: 'd'.repeat(64) }, low: 50, high: 120, drawn: true, controlnet: { name: 'lllyasviel/sd-controlnet-depth', hash: 'e'.repeat(64) } };
    const detailed = sampleRecipe({ control });
    expect(detailed.recipeVersion).toBe(6);
    expect(parseRecipe(JSON.parse(JSON.stringify(detailed)))).toEqual(detailed);
    expect(problemsOf({ ...detailed, recipeVersion: 5 })).toEqual([expect.stringMatching(/^control: control details need recipe version 6/)]);
    expect(problemsOf({ ...detailed, control: { ...control, start: 0.6 } })).toEqual([expect.stringMatching(/^control\.end: control must start before it ends/)]);
    expect(problemsOf({ ...detailed, control: { ...control, mode: 'scribble' } })[0]).toMatch(/^control\.mode:/);
    expect(problemsOf({ ...detailed, control: { ...control, controlnet: { name: 'x', hash: 'nope' } } })[0]).toMatch(/^control\.controlnet\.hash:/);
    expect(a1111Parameters(detailed)).toMatch(/ControlNet scale: 0\.9, ControlNet module: canny \(drawn\), Canny thresholds: 50\/120, ControlNet guidance start: 0, ControlNet guidance end: 0\.6/);
    const request = recipeToGenerateRequest(detailed, { model: {} as ModelFolder, subject: { embedding: { dims: [1, 16, 4], data: new Float32Array(64) } } as never, control: { path: '/map.png' } });
    expect(request).toMatchObject({ control: { path: '/map.png' }, controlScale: 0.9, controlEnd: 0.6 });
    expect(request).not.toHaveProperty('controlStart');
  });

  it('a LoRA recipe runs again only with its LoRA (none needed at strength 0)', () => {
    const model = { dir: '/models/tiny', pipelineClass: 'BlipDiffusionPipeline', components: new Map() } as unknown as ModelFolder;
    const subject = { embedding: { dims: [1, 16, 32] as [1, number, number], data: new Float32Array(512) } };
    const weights = { rank: 4, alpha: 4, modules: new Map() };
    expect(() => recipeToGenerateRequest(sampleRecipe({ lora: { sha256: 'f'.repeat(64), scale: 0.5 } }), { model, subject })).toThrow(/this recipe applied a LoRA: give it/);
    expect(recipeToGenerateRequest(sampleRecipe({ lora: { sha256: 'f'.repeat(64), scale: 0.5 } }), { model, subject, lora: weights }).lora).toEqual({ weights, scale: 0.5 });
    expect(recipeToGenerateRequest(sampleRecipe({ lora: { sha256: 'f'.repeat(64), scale: 0 } }), { model, subject }).lora).toBeUndefined();
    expect(recipeToGenerateRequest(sampleRecipe(), { model, subject, lora: weights }).lora).toBeUndefined();
  });

  it('refuses out-of-range numbers and malformed seeds', () => {
    const cases: [string, unknown][] = [
      ['steps', 0],
      ['steps', 1001],
      ['steps', 2.5],
      ['guidanceScale', -1],
      ['guidanceScale', 1e9],
      ['width', 4097],
      ['height', 0],
      ['promptReps', 0],
      ['promptStrength', 1e6],
      ['durationMs', -5],
      ['seed', 42],
      ['seed', '-1'],
      ['seed', '007'],
      ['seed', (2n ** 64n).toString()],
      ['seed', '1e3'],
    ];
    for (const [field, value] of cases) expect(problemsOf(forged((j) => (j[field] = value))), `${field} = ${String(value)}`).toEqual([expect.stringMatching(new RegExp(`^${field}:`))]);
  });

  it('refuses huge strings and too many photos', () => {
    expect(problemsOf(forged((j) => (j.prompt = 'x'.repeat(4001))))[0]).toMatch(/^prompt: at most 4000 characters/);
    expect(problemsOf(forged((j) => (j.negativePrompt = 'x'.repeat(100_000))))[0]).toMatch(/^negativePrompt:/);
    expect(problemsOf(forged((j) => ((j.model as Record<string, unknown>).name = 'm'.repeat(1_000_000))))[0]).toMatch(/^model\.name:/);
    expect(problemsOf(forged((j) => (j.appVersion = `1.0.0-${'x'.repeat(100)}`)))[0]).toMatch(/^appVersion:/);
    const photos = Array.from({ length: 11 }, () => ({ sha256: 'd'.repeat(64), weight: 1 }));
    expect(problemsOf(forged((j) => (j.subject = { category: 'dog', photos }))).length).toBeGreaterThan(0);
    expect(problemsOf(forged((j) => (j.targetSubject = '   ')))[0]).toMatch(/^targetSubject: must not be empty/);
  });
});

describe('recipeToGenerateRequest', () => {
  const model = { dir: '/models/tiny' } as ModelFolder;
  const subject = { image: { path: '/photos/dog.jpg' }, category: 'dog' };

  it('carries every setting that decides the pixels, the seed as a bigint', () => {
    const recipe = sampleRecipe({ seed: '18446744073709551615', scheduler: 'euler', control: { sha256: 'c'.repeat(64), scale: 0.5 } });
    const request = recipeToGenerateRequest(recipe, { model, subject, control: { path: '/edges.png' } });
    expect(request).toEqual({
      model,
      subject,
      targetSubject: 'dog',
      prompt: 'on the beach, golden hour',
      negativePrompt: 'blurry',
      steps: 25,
      guidanceScale: 7.5,
      height: 96,
      width: 128,
      noise: { seed: 18446744073709551615n },
      scheduler: 'euler',
      control: { path: '/edges.png' },
      controlScale: 0.5,
      promptStrength: 1,
      promptReps: 20,
    });
    expect(() => recipeToGenerateRequest(recipe, { model, subject })).toThrow(/control image/);
    expect(subjectPhotoHashes(recipe.subject)).toEqual(['b'.repeat(64)]);
  });
});

describe('A1111 parameters text', () => {
  it('writes the prompt, the negative prompt and one line of fields', () => {
    expect(a1111Parameters(sampleRecipe())).toBe(
      'on the beach, golden hour\n' +
        'Negative prompt: blurry\n' +
        'Steps: 25, Sampler: PLMS, CFG scale: 7.5, Seed: 42, Size: 128x96, Model hash: aaaaaaaaaa, Model: tiny-blipdiffusion, Subject: dog, Version: BLIP Studio 0.1.0',
    );
  });

  it('leaves the negative line out when empty, names the scheduler as A1111 does and quotes values with separators', () => {
    const recipe = sampleRecipe({
      negativePrompt: '',
      scheduler: 'dpmpp2m-karras',
      model: { name: 'my model, v2', hash: 'f'.repeat(64) },
      control: { sha256: 'c'.repeat(64), scale: 0.8 },
    });
    expect(a1111Parameters(recipe)).toBe(
      'on the beach, golden hour\n' +
        'Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 42, Size: 128x96, Model hash: ffffffffff, Model: "my model, v2", Subject: dog, ControlNet scale: 0.8, Version: BLIP Studio 0.1.0',
    );
  });
});
