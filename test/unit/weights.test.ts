import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openComponentWeights, readTensor, readTensorAsFloat32, type ComponentWeights } from '../../main/engine/weights/component-weights';
import { convertBinToSafetensors } from '../../main/engine/weights/convert-bin';
import { readSafetensorsFile } from '../../main/engine/weights/safetensors';
import { openTorchCheckpoint } from '../../main/engine/weights/torch-checkpoint';
import { writeSafetensorsFile, type TensorData } from '../../main/engine/weights/safetensors-writer';
import { REPO_ROOT } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';

const kit = join(REPO_ROOT, 'test/fixtures/parity');
const safetensorsModel = join(kit, 'models/tiny-blipdiffusion');
const binModel = join(kit, 'models/tiny-blipdiffusion-bin');
const badWeights = join(kit, 'bad-weights');
const COMPONENTS = ['text_encoder', 'vae', 'qformer', 'unet'];
const PWNED = '/tmp/blipstudio-pwned';

let temp: ReturnType<typeof makeTempDir>;
beforeEach(() => {
  temp = makeTempDir('blip-weights-');
});
afterEach(() => temp.remove());

/** Names, dtypes, shapes and bytes of every tensor of `actual` equal those of `expected`. */
async function expectSameTensors(actual: ComponentWeights, expected: ComponentWeights): Promise<void> {
  expect([...actual.tensors.keys()].sort()).toEqual([...expected.tensors.keys()].sort());
  for (const [name, want] of expected.tensors) {
    const got = actual.tensors.get(name)!;
    expect({ name, dtype: got.dtype, shape: got.shape }).toEqual({ name, dtype: want.dtype, shape: want.shape });
    expect(Buffer.from(await readTensor(got)).equals(Buffer.from(await readTensor(want))), name).toBe(true);
  }
}

describe('kit weights', () => {
  it.each(COMPONENTS)('%s: the .bin gives tensors bit-identical to the safetensors file', async (component) => {
    const fromSafetensors = await openComponentWeights(join(safetensorsModel, component), { cacheDir: temp.path });
    const fromBin = await openComponentWeights(join(binModel, component), { cacheDir: temp.path });
    expect(fromSafetensors.source).toBe('safetensors');
    expect(fromBin.source).toBe('converted-bin');
    expect(fromBin.files[0]!.startsWith(temp.path)).toBe(true);
    const manifest = JSON.parse(readFileSync(join(kit, 'extras-manifest.json'), 'utf8')) as { files: Record<string, { tensors?: number }> };
    const binName = component === 'text_encoder' || component === 'qformer' ? 'pytorch_model.bin' : 'diffusion_pytorch_model.bin';
    expect(fromBin.tensors.size).toBe(manifest.files[`models/tiny-blipdiffusion-bin/${component}/${binName}`]!.tensors);
    await expectSameTensors(fromBin, fromSafetensors);
  });

  it('the legacy (pre-1.6, non-zip) torch format loads the same tensors as the vae', async () => {
    const converted = await convertBinToSafetensors(join(badWeights, 'legacy-format.bin'), { cacheDir: temp.path });
    const header = await readSafetensorsFile(converted.file);
    const vae = await openComponentWeights(join(safetensorsModel, 'vae'), { cacheDir: temp.path });
    await expectSameTensors({ files: [converted.file], tensors: new Map(header.tensors.map((t) => [t.name, t])), source: 'converted-bin' }, vae);
  });

  it('the controlnet safetensors opens in place', async () => {
    const controlnet = await openComponentWeights(join(kit, 'models/tiny-blipdiffusion-controlnet/controlnet'), { cacheDir: temp.path });
    expect(controlnet.files).toEqual([join(kit, 'models/tiny-blipdiffusion-controlnet/controlnet/diffusion_pytorch_model.safetensors')]);
    expect(controlnet.tensors.size).toBeGreaterThan(0);
    expect(readdirSync(temp.path)).toEqual([]); // nothing converted
  });

  it('entry offsets are absolute: file bytes offset..offset+byteLength are the tensor (as an independent parse says)', async () => {
    const file = join(safetensorsModel, 'unet/diffusion_pytorch_model.safetensors');
    const bytes = readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
    const unet = await openComponentWeights(join(safetensorsModel, 'unet'), { cacheDir: temp.path });
    for (const [name, entry] of unet.tensors) {
      const [begin, end] = header[name]!.data_offsets;
      expect(entry.file).toBe(file);
      expect([entry.offset, entry.byteLength]).toEqual([8 + headerLength + begin, end - begin]);
      expect(Buffer.from(await readTensor(entry)).equals(bytes.subarray(entry.offset, entry.offset + entry.byteLength))).toBe(true);
    }
    const converted = await openComponentWeights(join(binModel, 'unet'), { cacheDir: temp.path });
    const convertedBytes = readFileSync(converted.files[0]!);
    for (const entry of converted.tensors.values()) {
      expect(convertedBytes.subarray(entry.offset, entry.offset + entry.byteLength).equals(Buffer.from(await readTensor(unet.tensors.get(entry.name)!)))).toBe(true);
    }
  });

  it('reads the int64 position ids and float32 weights as float32', async () => {
    const textEncoder = await openComponentWeights(join(binModel, 'text_encoder'), { cacheDir: temp.path });
    const positions = await readTensorAsFloat32(textEncoder.tensors.get('text_model.embeddings.position_ids')!);
    expect(Array.from(positions.subarray(0, 4))).toEqual([0, 1, 2, 3]);
    const weight = textEncoder.tensors.get('text_model.embeddings.position_embedding.weight')!;
    const raw = await readTensor(weight);
    expect(await readTensorAsFloat32(weight)).toEqual(new Float32Array(raw.slice().buffer));
  });
});

describe('conversion cache', () => {
  it('converts once: a second open reuses the file without rewriting or re-hashing it', async () => {
    const progress: number[] = [];
    const first = await openComponentWeights(join(binModel, 'vae'), { cacheDir: temp.path, onProgress: (p) => progress.push(p.bytesDone / p.bytesTotal) });
    expect(progress.at(-1)).toBe(1);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    const mtime = statSync(first.files[0]!).mtimeMs;
    let calledAgain = false;
    const second = await openComponentWeights(join(binModel, 'vae'), { cacheDir: temp.path, onProgress: () => (calledAgain = true) });
    expect(second.files).toEqual(first.files);
    expect(statSync(second.files[0]!).mtimeMs).toBe(mtime);
    expect(calledAgain).toBe(false);
  });

  it('an identical file in another folder shares the conversion (keyed by content hash)', async () => {
    const copy = join(temp.path, 'copy/vae');
    mkdirSync(copy, { recursive: true });
    copyFileSync(join(binModel, 'vae/diffusion_pytorch_model.bin'), join(copy, 'diffusion_pytorch_model.bin'));
    const cacheDir = join(temp.path, 'cache');
    const first = await convertBinToSafetensors(join(binModel, 'vae/diffusion_pytorch_model.bin'), { cacheDir });
    const mtime = statSync(first.file).mtimeMs;
    const second = await convertBinToSafetensors(join(copy, 'diffusion_pytorch_model.bin'), { cacheDir });
    expect(second.file).toBe(first.file);
    expect(statSync(second.file).mtimeMs).toBe(mtime);
  });

  it('a damaged cache file is rebuilt, not trusted', async () => {
    const first = await convertBinToSafetensors(join(binModel, 'vae/diffusion_pytorch_model.bin'), { cacheDir: temp.path });
    rmSync(first.file);
    copyFileSync(join(badWeights, 'huge-header.safetensors'), first.file);
    const again = await convertBinToSafetensors(join(binModel, 'vae/diffusion_pytorch_model.bin'), { cacheDir: temp.path });
    expect(again.reused).toBe(false);
    expect((await readSafetensorsFile(again.file)).tensors.length).toBe(124);
  });

  it('an abort midway through writing leaves nothing behind', async () => {
    const source = join(binModel, 'unet/diffusion_pytorch_model.bin');
    const sourceSize = statSync(source).size;
    const controller = new AbortController();
    let abortedAt = 0;
    const conversion = convertBinToSafetensors(source, {
      cacheDir: temp.path,
      signal: controller.signal,
      onProgress: ({ bytesDone, bytesTotal }) => {
        // Past hashing (the first sourceSize bytes) and well into writing tensors.
        if (bytesDone > sourceSize + (bytesTotal - sourceSize) / 3 && !controller.signal.aborted) {
          abortedAt = bytesDone / bytesTotal;
          controller.abort();
        }
      },
    });
    await expect(conversion).rejects.toMatchObject({ name: 'AbortError' });
    expect(abortedAt).toBeGreaterThan(0.5);
    expect(abortedAt).toBeLessThan(1);
    expect(readdirSync(temp.path).filter((name) => name !== 'bin-sources')).toEqual([]);
    expect(readdirSync(join(temp.path, 'bin-sources'))).toEqual([]);
  });

  it('an abort while hashing also leaves nothing behind', async () => {
    const source = join(binModel, 'vae/diffusion_pytorch_model.bin');
    const controller = new AbortController();
    const onProgress = ({ bytesDone }: { bytesDone: number }): void => {
      if (bytesDone <= statSync(source).size) controller.abort();
    };
    await expect(convertBinToSafetensors(source, { cacheDir: temp.path, signal: controller.signal, onProgress })).rejects.toMatchObject({ name: 'AbortError' });
    expect(controller.signal.aborted).toBe(true);
    expect(readdirSync(temp.path).filter((name) => name !== 'bin-sources')).toEqual([]);
    expect(readdirSync(join(temp.path, 'bin-sources'))).toEqual([]);
  });
});

describe('bad weights from the kit', () => {
  /** Each kit file, how we open it, and what its error must say (besides the file name). */
  const EXPECTED: Record<string, RegExp> = {
    'code-execution.bin': /refused to load: the pickle asks for the Python global 'posix\.system', which is not on the allow-list.*Nothing from the file was run/,
    'truncated.bin': /no end-of-central-directory record: the file is truncated/,
    'offsets-past-end.safetensors': /tensor 'decoder\.conv_in\.bias' has data_offsets \[0, 1000000128\] that run past the end of the file/,
    'huge-header.safetensors': /header claims to be 1099511627776 bytes, over the 100000000-byte limit/,
  };

  it('covers every file of bad-weights/ (legacy-format.bin loads, see above)', () => {
    expect(readdirSync(badWeights).sort()).toEqual([...Object.keys(EXPECTED), 'legacy-format.bin'].sort());
  });

  it.each(Object.entries(EXPECTED))('%s is refused with the file named and the problem', async (name, problem) => {
    const file = join(badWeights, name);
    const load = name.endsWith('.bin') ? convertBinToSafetensors(file, { cacheDir: temp.path }) : readSafetensorsFile(file);
    const error = await load.then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error!.message.startsWith(`${file}: `)).toBe(true);
    expect(error!.message).toMatch(problem);
  });

  it('a .bin whose tensor bytes were damaged fails the CRC-32 check, naming the tensor', async () => {
    const source = join(binModel, 'vae/diffusion_pytorch_model.bin');
    const tensor = (await openTorchCheckpoint(source)).tensors.get('decoder.conv_in.weight')!;
    const bytes = readFileSync(source);
    bytes[tensor.storage.fileOffset + 100]! ^= 0x40;
    const damaged = join(temp.path, 'diffusion_pytorch_model.bin');
    writeFileSync(damaged, bytes);
    const error = await convertBinToSafetensors(damaged, { cacheDir: join(temp.path, 'cache') }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toBe(
      `${damaged}: the bytes of tensor 'decoder.conv_in.weight' (storage '${tensor.storage.key}') fail their CRC-32 check: the file is corrupt; download it again`,
    );
    expect(readdirSync(join(temp.path, 'cache')).filter((n) => n !== 'bin-sources')).toEqual([]);
  });

  it('code-execution.bin does not run its payload', async () => {
    rmSync(PWNED, { force: true });
    await expect(convertBinToSafetensors(join(badWeights, 'code-execution.bin'), { cacheDir: temp.path })).rejects.toThrow(/posix\.system/);
    // Also through a component folder, as the app would meet it.
    const folder = join(temp.path, 'evil/unet');
    mkdirSync(folder, { recursive: true });
    copyFileSync(join(badWeights, 'code-execution.bin'), join(folder, 'diffusion_pytorch_model.bin'));
    await expect(openComponentWeights(folder, { cacheDir: join(temp.path, 'cache') })).rejects.toThrow(/diffusion_pytorch_model\.bin: refused to load/);
    expect(existsSync(PWNED)).toBe(false);
    expect(readdirSync(join(temp.path, 'cache')).filter((n) => n.endsWith('.safetensors'))).toEqual([]);
  });
});

describe('component folders', () => {
  it('names the folder and what it looked for when there is no weights file', async () => {
    await expect(openComponentWeights(temp.path, { cacheDir: join(temp.path, 'cache') })).rejects.toThrow(
      `${temp.path}: holds no weights file: expected one of model.safetensors, diffusion_pytorch_model.safetensors`,
    );
  });

  it('opens safetensors shards through their index, and checks the index against the shards', async () => {
    const tensor = (name: string, value: number): TensorData => ({ name, dtype: 'F32', shape: [1], data: new Uint8Array(new Float32Array([value]).buffer) });
    writeSafetensorsFile(join(temp.path, 'model-00001-of-00002.safetensors'), [tensor('a', 1), tensor('b', 2)]);
    writeSafetensorsFile(join(temp.path, 'model-00002-of-00002.safetensors'), [tensor('c', 3)]);
    const index = (weightMap: Record<string, string>): void =>
      writeFileSync(join(temp.path, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 12 }, weight_map: weightMap }));
    index({ a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' });
    const weights = await openComponentWeights(temp.path, { cacheDir: join(temp.path, 'cache') });
    expect(weights.files).toEqual([join(temp.path, 'model-00001-of-00002.safetensors'), join(temp.path, 'model-00002-of-00002.safetensors')]);
    expect(await readTensorAsFloat32(weights.tensors.get('c')!)).toEqual(new Float32Array([3]));

    index({ a: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' });
    await expect(openComponentWeights(temp.path, { cacheDir: temp.path })).rejects.toThrow("model-00001-of-00002.safetensors: holds tensor 'b', which");
    index({ a: 'model-00002-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' });
    await expect(openComponentWeights(temp.path, { cacheDir: temp.path })).rejects.toThrow("model.safetensors.index.json: lists tensor 'a' in model-00002-of-00002.safetensors, but it is in");
    index({ a: '../../etc/model.safetensors' });
    await expect(openComponentWeights(temp.path, { cacheDir: temp.path })).rejects.toThrow(/index\.json: the shard of tensor 'a' is "..\/..\/etc\/model.safetensors", not a .safetensors file name in the same folder/);
  });

  it('prefers safetensors over .bin when both are present', async () => {
    copyFileSync(join(safetensorsModel, 'vae/diffusion_pytorch_model.safetensors'), join(temp.path, 'diffusion_pytorch_model.safetensors'));
    copyFileSync(join(badWeights, 'code-execution.bin'), join(temp.path, 'diffusion_pytorch_model.bin'));
    const weights = await openComponentWeights(temp.path, { cacheDir: join(temp.path, 'cache') });
    expect(weights.source).toBe('safetensors');
  });
});
