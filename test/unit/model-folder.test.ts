import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelFolder, ModelFolderError } from '../../main/models/model-folder';
import { REPO_ROOT } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';

const models = join(REPO_ROOT, 'test/fixtures/parity/models');
let dir: ReturnType<typeof makeTempDir>;
beforeEach(() => {
  dir = makeTempDir('blip-model-');
});
afterEach(() => dir.remove());

function copyOfTinyModel(): string {
  const copy = join(dir.path, 'model');
  cpSync(join(models, 'tiny-blipdiffusion'), copy, { recursive: true });
  return copy;
}

describe('model folders', () => {
  it('reads the pipeline, its components and their configs', () => {
    const model = loadModelFolder(join(models, 'tiny-blipdiffusion-controlnet'));
    expect(model.pipelineClass).toBe('BlipDiffusionControlNetPipeline');
    expect([...model.components.keys()].sort()).toEqual(['controlnet', 'image_processor', 'qformer', 'scheduler', 'text_encoder', 'tokenizer', 'unet', 'vae']);
    expect(model.components.get('qformer')).toMatchObject({ library: 'blip_diffusion', className: 'Blip2QFormerModel' });
    expect(model.components.get('scheduler')?.config).toMatchObject({ _class_name: 'PNDMScheduler' });
    expect(model.index.ctx_begin_pos).toBe(2);
  });

  it('lists every problem of a broken folder at once, naming the files', () => {
    const copy = copyOfTinyModel();
    rmSync(join(copy, 'vae'), { recursive: true });
    writeFileSync(join(copy, 'unet/config.json'), '{ "in_channels": 4, ');
    rmSync(join(copy, 'scheduler/scheduler_config.json'));
    try {
      loadModelFolder(copy);
      expect.unreachable('a broken folder must be refused');
    } catch (error) {
      expect(error).toBeInstanceOf(ModelFolderError);
      const problems = (error as ModelFolderError).problems.join('\n');
      expect(problems).toMatch(/vae\/: the component folder is missing/);
      expect(problems).toMatch(/unet[/\\]config.json: invalid JSON/);
      expect(problems).toMatch(/scheduler\/scheduler_config.json: missing/);
    }
  });

  it('says what to choose when the folder is not a pipeline folder', () => {
    expect(() => loadModelFolder(join(models, 'tiny-blipdiffusion/unet'))).toThrow(/model_index.json is missing: choose the folder that contains it/);
    expect(() => loadModelFolder(join(dir.path, 'nope'))).toThrow(/does not exist/);
    const copy = copyOfTinyModel();
    writeFileSync(join(copy, 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionPipeline' }));
    expect(() => loadModelFolder(copy)).toThrow(/pipeline 'StableDiffusionPipeline' is not one BLIP Studio runs/);
  });
});
