import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readTensor, readTensorAsFloat32 } from '../../main/engine/weights/component-weights';
import { parseSafetensorsHeader, readSafetensorsFile } from '../../main/engine/weights/safetensors';
import { planSafetensorsLayout, serializeSafetensors, writeSafetensorsFile, writeSafetensorsFileStreaming } from '../../main/engine/weights/safetensors-writer';
import { makeTempDir } from '../helpers/temp-dir';

const FILE = '/models/unet/diffusion_pytorch_model.safetensors';

/** A file of `dataBytes` zero bytes after the given header text (as written, not re-encoded). */
function crafted(headerText: string, dataBytes: number): { prefix: Uint8Array; fileSize: number } {
  const json = new TextEncoder().encode(headerText);
  const prefix = new Uint8Array(8 + json.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);
  prefix.set(json, 8);
  return { prefix, fileSize: prefix.length + dataBytes };
}

function parseCrafted(headerText: string, dataBytes: number): ReturnType<typeof parseSafetensorsHeader> {
  const { prefix, fileSize } = crafted(headerText, dataBytes);
  return parseSafetensorsHeader(prefix, fileSize, FILE);
}

function uint16Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(values).buffer);
}

let temp: ReturnType<typeof makeTempDir>;
beforeEach(() => {
  temp = makeTempDir('blip-safetensors-');
});
afterEach(() => temp.remove());

describe('safetensors header validation', () => {
  it('accepts a valid header: absolute offsets, metadata, entries sorted by offset', () => {
    const headerText = '{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}  ';
    const header = parseCrafted(headerText, 16);
    const dataOffset = 8 + headerText.length;
    expect(header.dataOffset).toBe(dataOffset);
    expect(header.metadata).toEqual(new Map([['format', 'pt']]));
    expect(header.tensors.map((t) => [t.name, t.dtype, t.shape, t.offset, t.byteLength, t.file])).toEqual([
      ['a', 'F16', [2, 2], dataOffset, 8, FILE],
      ['b', 'F32', [2], dataOffset + 8, 8, FILE],
    ]);
  });

  const refusals: Array<[string, string, number, RegExp]> = [
    ['overlapping ranges', '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', 16, /tensors 'a' \[0, 16\] and 'b' \[8, 16\] overlap/],
    ['a wrong byte length', '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}', 16, /tensor 'a' is F32 with shape \[2, 3\], which needs 24 bytes, but data_offsets \[0, 16\] give 16/],
    ['duplicate names', '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2, /duplicate key "a"/],
    ['an unknown dtype', '{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', 1, /tensor 'a' has dtype 'F8_E4M3', which BLIP Studio does not read/],
    ['a range past the end', '{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}', 4, /tensor 'a' has data_offsets \[0, 8\] that run past the end of the file \(its data section holds 4 bytes\)/],
    ['a negative dimension', '{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}', 0, /tensor 'a' has a shape that is not a list of non-negative integers/],
    ['a fractional offset', '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1.5]}}', 2, /tensor 'a' has data_offsets that are not two non-negative integers/],
    ['offsets that end before they begin', '{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}}', 2, /end before they begin/],
    ['an unknown field', '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"exec":"rm -rf"}}', 1, /tensor 'a' has an unknown field 'exec'/],
    ['metadata that is not strings', '{"__metadata__":{"n":1}}', 0, /__metadata__ entry 'n' is not a string/],
    ['a header that is not an object', '[1,2]', 0, /does not start with "\{"/],
    ['a header that is not JSON', '{"a":', 0, /not valid JSON/],
    ['a shape whose size overflows', '{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}', 0, /needs more than 2\^53 bytes/],
  ];

  it.each(refusals)('refuses %s, naming the file and the tensor', (_case, headerText, dataBytes, problem) => {
    expect(() => parseCrafted(headerText, dataBytes)).toThrow(problem);
    expect(() => parseCrafted(headerText, dataBytes)).toThrow(`${FILE}: `);
  });

  it('refuses invalid UTF-8', () => {
    const { prefix, fileSize } = crafted('{"a":1}', 0);
    prefix[10] = 0xff;
    expect(() => parseSafetensorsHeader(prefix, fileSize, FILE)).toThrow(`${FILE}: the safetensors header is not valid UTF-8`);
  });

  it('refuses a header longer than the file, and a file too short to hold a length', () => {
    const { prefix } = crafted('{}', 0);
    expect(() => parseSafetensorsHeader(prefix, 9, FILE)).toThrow(/the safetensors header claims to be 2 bytes but only 1 bytes follow the length field: the file is truncated/);
    expect(() => parseSafetensorsHeader(new Uint8Array(4), 4, FILE)).toThrow(/only 4 bytes long/);
  });

  it('allows empty tensors anywhere, even inside another tensor’s range', () => {
    const header = parseCrafted('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[2,2]}}', 4);
    expect(header.tensors.map((t) => t.name)).toEqual(['a', 'empty']);
  });
});

describe('safetensors writer', () => {
  it('pads the header with spaces to a multiple of 8 and orders tensors by element size, then name', () => {
    const layout = planSafetensorsLayout(
      [
        { name: 'z', dtype: 'U8', shape: [3] },
        { name: 'b', dtype: 'F16', shape: [1] },
        { name: '0', dtype: 'F32', shape: [1] },
        { name: 'a', dtype: 'F16', shape: [1] },
        { name: 'big', dtype: 'I64', shape: [1] },
      ],
      { format: 'pt' },
    );
    const headerLength = Number(new DataView(layout.header.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    expect(layout.header.length).toBe(8 + headerLength);
    const text = new TextDecoder().decode(layout.header.subarray(8));
    expect(text).toMatch(/^\{"__metadata__":\{"format":"pt"\},"big":.*\} *$/);
    expect(text.trimEnd().length).toBeGreaterThan(headerLength - 8);
    expect(layout.tensors.map((t) => [t.name, t.begin])).toEqual([
      ['big', 0],
      ['0', 8],
      ['a', 12],
      ['b', 14],
      ['z', 16],
    ]);
    for (const tensor of layout.tensors) expect((layout.header.length + tensor.begin) % { I64: 8, F32: 4, F16: 2, U8: 1 }[tensor.dtype as 'U8']).toBe(0);
    expect(layout.fileSize).toBe(layout.header.length + 19);
  });

  it('round-trips through the reader', async () => {
    const path = join(temp.path, 'w.safetensors');
    const data = new Uint8Array(new Float32Array([1.5, -2, 3, 4, 5, 6]).buffer);
    writeSafetensorsFile(path, [{ name: 'w', dtype: 'F32', shape: [2, 3], data }], { note: 'x' });
    const header = await readSafetensorsFile(path);
    expect(header.metadata.get('note')).toBe('x');
    expect(header.tensors[0]).toMatchObject({ name: 'w', dtype: 'F32', shape: [2, 3], byteLength: 24 });
    expect(await readTensor(header.tensors[0]!)).toEqual(data);
    expect(readdirSync(temp.path)).toEqual(['w.safetensors']);
  });

  it('is deterministic: the same tensors in any order give the same bytes', () => {
    const tensors = [
      { name: 'a', dtype: 'F32' as const, shape: [1], data: new Uint8Array(4).fill(1) },
      { name: 'b', dtype: 'U8' as const, shape: [2], data: new Uint8Array([7, 8]) },
    ];
    expect(serializeSafetensors(tensors)).toEqual(serializeSafetensors([...tensors].reverse()));
  });

  it('refuses duplicate names and data of the wrong size', () => {
    const one = { name: 'a', dtype: 'F32' as const, shape: [1], data: new Uint8Array(4) };
    expect(() => serializeSafetensors([one, one])).toThrow("two tensors are named 'a'");
    expect(() => serializeSafetensors([{ ...one, data: new Uint8Array(3) }])).toThrow("tensor 'a' (F32 [1]) needs 4 bytes, got 3");
  });

  it('streams big files through a temporary file that an abort removes', async () => {
    const path = join(temp.path, 'big.safetensors');
    const controller = new AbortController();
    const specs = [{ name: 'w', dtype: 'U8' as const, shape: [1024] }];
    const source = async function* (): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(512).fill(1);
      controller.abort();
      yield new Uint8Array(512).fill(2);
    };
    await expect(writeSafetensorsFileStreaming(path, specs, {}, source, { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(readdirSync(temp.path)).toEqual([]);

    await writeSafetensorsFileStreaming(path, specs, {}, async function* () {
      yield new Uint8Array(1000).fill(3);
    }).then(
      () => expect.unreachable(),
      (error: Error) => expect(error.message).toBe("tensor 'w' (U8 [1024]) needs 1024 bytes, its source gave 1000"),
    );
    expect(readdirSync(temp.path)).toEqual([]);

    const chunks = [new Uint8Array(1000).fill(4), new Uint8Array(24).fill(5)];
    await writeSafetensorsFileStreaming(path, specs, {}, async function* () {
      yield* chunks;
    });
    expect(readFileSync(path)).toEqual(Buffer.from(serializeSafetensors([{ ...specs[0]!, data: Buffer.concat(chunks) }])));
  });
});

describe('reduced-precision weights read back exactly as float32', () => {
  it('float16', async () => {
    const path = join(temp.path, 'f16.safetensors');
    // sign | 5-bit exponent (bias 15) | 10-bit fraction, worked out by hand:
    const cases: Array<[number, number]> = [
      [0x3c00, 1], // 2^0
      [0xc000, -2], // sign, exponent 16
      [0x3555, 0.333251953125], // (1 + 341/1024) · 2^-2, the float16 nearest 1/3
      [0x7bff, 65504], // largest finite: (2 - 2^-10) · 2^15
      [0x0001, 2 ** -24], // smallest subnormal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x8000, -0],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    writeSafetensorsFile(path, [{ name: 'h', dtype: 'F16', shape: [cases.length], data: uint16Bytes(cases.map(([bits]) => bits)) }]);
    const [entry] = (await readSafetensorsFile(path)).tensors;
    expect(Array.from(await readTensorAsFloat32(entry!))).toEqual(cases.map(([, value]) => value));
    writeSafetensorsFile(path, [{ name: 'nan', dtype: 'F16', shape: [1], data: uint16Bytes([0x7e00]) }]);
    expect(Number.isNaN((await readTensorAsFloat32((await readSafetensorsFile(path)).tensors[0]!))[0])).toBe(true);
  });

  it('bfloat16', async () => {
    const path = join(temp.path, 'bf16.safetensors');
    // The top 16 bits of a float32: sign | 8-bit exponent (bias 127) | 7-bit fraction.
    const cases: Array<[number, number]> = [
      [0x3f80, 1],
      [0xc000, -2],
      [0x3eab, 0.333984375], // (1 + 43/128) · 2^-2
      [0x4049, 3.140625], // (1 + 73/128) · 2^1
      [0x7f7f, 255 * 2 ** 120], // largest finite: (2 - 2^-7) · 2^127
      [0x0001, 2 ** -133], // float32 subnormal 0x00010000
      [0x8000, -0],
      [0xff80, -Infinity],
    ];
    writeSafetensorsFile(path, [{ name: 'b', dtype: 'BF16', shape: [cases.length], data: uint16Bytes(cases.map(([bits]) => bits)) }]);
    const [entry] = (await readSafetensorsFile(path)).tensors;
    expect(Array.from(await readTensorAsFloat32(entry!))).toEqual(cases.map(([, value]) => value));
  });

  it('float64 rounds to the nearest float32', async () => {
    const path = join(temp.path, 'f64.safetensors');
    writeSafetensorsFile(path, [{ name: 'd', dtype: 'F64', shape: [3], data: new Uint8Array(new Float64Array([0.1, 1 + 2 ** -30, -1e300]).buffer) }]);
    const values = await readTensorAsFloat32((await readSafetensorsFile(path)).tensors[0]!);
    expect(Array.from(values)).toEqual([Math.fround(0.1), 1, -Infinity]);
  });

  it('a file on disk that holds reduced-precision weights keeps its exact bits', async () => {
    const path = join(temp.path, 'mixed.safetensors');
    const bits = uint16Bytes([0x3c00, 0x3555]);
    writeSafetensorsFile(path, [{ name: 'h', dtype: 'F16', shape: [2], data: bits }]);
    expect(await readTensor((await readSafetensorsFile(path)).tensors[0]!)).toEqual(bits);
  });
});
