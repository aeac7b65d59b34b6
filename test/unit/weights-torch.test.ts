import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { readTensorAsFloat32 } from '../../main/engine/weights/component-weights';
import { convertBinToSafetensors } from '../../main/engine/weights/convert-bin';
import { PickleCallable, PickleDict, PickleRefusedError, unpickle, type PickleValue } from '../../main/engine/weights/pickle';
import { readSafetensorsFile, type TensorEntry } from '../../main/engine/weights/safetensors';
import { gatherStrided, isContiguous, openTorchCheckpoint } from '../../main/engine/weights/torch-checkpoint';
import { makeTempDir } from '../helpers/temp-dir';

/** Builds pickle bytes opcode by opcode, the way torch.save (protocol 2) writes them. */
class PickleBuilder {
  private readonly parts: number[] = [0x80, 2]; // PROTO 2
  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  mark(): this {
    return this.op(0x28);
  }
  int(value: number): this {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setInt32(0, value, true);
    return this.op(0x4a, ...bytes); // BININT
  }
  text(value: string): this {
    const utf8 = new TextEncoder().encode(value);
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, utf8.length, true);
    return this.op(0x58, ...length, ...utf8); // BINUNICODE
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }
  tuple(items: (b: this) => void): this {
    this.mark();
    items(this);
    return this.op(0x74);
  }
  /** _rebuild_tensor_v2(('storage', <class>, key, 'cpu', numel), offset, shape, stride, False, OrderedDict()) */
  tensor(t: TensorSpec): this {
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.tuple((b) => {
      b.tuple((s) => s.text('storage').global('torch', t.storageClass ?? 'FloatStorage').text(t.key).text('cpu').int(t.numel)).op(0x51); // BINPERSID
      b.int(t.offset ?? 0);
      b.tuple((s) => t.shape.forEach((d) => s.int(d)));
      b.tuple((s) => t.stride.forEach((d) => s.int(d)));
      b.op(0x89); // NEWFALSE
      b.global('collections', 'OrderedDict').op(0x29, 0x52); // EMPTY_TUPLE, REDUCE
    });
    return this.op(0x52); // REDUCE
  }
  bytes(): Uint8Array {
    return new Uint8Array([...this.parts, 0x2e]); // STOP
  }
}

interface TensorSpec {
  key: string;
  numel: number;
  shape: number[];
  stride: number[];
  offset?: number;
  storageClass?: string;
}

/** A state dict as torch.save writes model.state_dict(): an OrderedDict with a `_metadata` attribute. */
function stateDictPickle(tensors: Record<string, TensorSpec>): Uint8Array {
  const pickle = new PickleBuilder().global('collections', 'OrderedDict').op(0x29, 0x52).mark();
  for (const [name, spec] of Object.entries(tensors)) pickle.text(name).tensor(spec);
  pickle.op(0x75); // SETITEMS
  pickle.op(0x7d).mark().text('_metadata').op(0x7d).mark().text('').op(0x7d).text('version').int(1).op(0x73).op(0x75).op(0x75); // {'_metadata': {'': {'version': 1}}}
  return pickle.op(0x62).bytes(); // BUILD
}

/** A stored (uncompressed) zip like torch's, without the 64-byte alignment padding. */
function zipArchive(records: Record<string, Uint8Array>, method = 0): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(records)) {
    const nameBytes = new TextEncoder().encode(name);
    const local = new Uint8Array(30 + nameBytes.length);
    const l = new DataView(local.buffer);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(8, method, true);
    l.setUint32(14, crc32(data), true);
    l.setUint32(18, data.length, true);
    l.setUint32(22, data.length, true);
    l.setUint16(26, nameBytes.length, true);
    local.set(nameBytes, 30);
    const central = new Uint8Array(46 + nameBytes.length);
    const c = new DataView(central.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(10, method, true);
    c.setUint32(16, crc32(data), true);
    c.setUint32(20, data.length, true);
    c.setUint32(24, data.length, true);
    c.setUint16(28, nameBytes.length, true);
    c.setUint32(42, offset, true);
    central.set(nameBytes, 46);
    locals.push(local, data);
    centrals.push(central);
    offset += local.length + data.length;
  }
  const directorySize = centrals.reduce((sum, c) => sum + c.length, 0);
  const end = new Uint8Array(22);
  const e = new DataView(end.buffer);
  e.setUint32(0, 0x06054b50, true);
  e.setUint16(8, centrals.length, true);
  e.setUint16(10, centrals.length, true);
  e.setUint32(12, directorySize, true);
  e.setUint32(16, offset, true);
  return Buffer.concat([...locals, ...centrals, end]);
}

function floats(...values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

let temp: ReturnType<typeof makeTempDir>;
beforeEach(() => {
  temp = makeTempDir('blip-torch-');
});
afterEach(() => temp.remove());

function writeBin(name: string, records: Record<string, Uint8Array>, method = 0): string {
  const path = join(temp.path, name);
  writeFileSync(path, zipArchive(records, method));
  return path;
}

async function convertedTensors(bin: string): Promise<Map<string, TensorEntry>> {
  const converted = await convertBinToSafetensors(bin, { cacheDir: join(temp.path, 'cache') });
  return new Map((await readSafetensorsFile(converted.file)).tensors.map((t) => [t.name, t]));
}

describe('torch zip checkpoints', () => {
  it('copies strided views, storage offsets and shared storages into contiguous tensors', async () => {
    const storage = floats(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
    const bin = writeBin('views.bin', {
      'archive/data.pkl': stateDictPickle({
        // A 2×3 matrix saved transposed without .contiguous(): shape [3, 2], strides [1, 3].
        transposed: { key: '0', numel: 12, shape: [3, 2], stride: [1, 3] },
        tail: { key: '0', numel: 12, shape: [2], stride: [1], offset: 10 },
        tied: { key: '0', numel: 12, shape: [2, 3], stride: [3, 1] },
        everyOtherColumn: { key: '0', numel: 12, shape: [3, 2], stride: [4, 2], offset: 1 },
        broadcast: { key: '0', numel: 12, shape: [2, 2], stride: [0, 1], offset: 5 },
        scalar: { key: '0', numel: 12, shape: [], stride: [], offset: 7 },
      }),
      'archive/data/0': storage,
      'archive/version': new TextEncoder().encode('3\n'),
      'archive/byteorder': new TextEncoder().encode('little'),
    });
    const tensors = await convertedTensors(bin);
    const values = async (name: string): Promise<number[]> => Array.from(await readTensorAsFloat32(tensors.get(name)!));
    expect(tensors.get('transposed')!.shape).toEqual([3, 2]);
    expect(await values('transposed')).toEqual([0, 3, 1, 4, 2, 5]);
    expect(await values('tail')).toEqual([10, 11]);
    expect(await values('tied')).toEqual([0, 1, 2, 3, 4, 5]);
    expect(await values('everyOtherColumn')).toEqual([1, 3, 5, 7, 9, 11]);
    expect(await values('broadcast')).toEqual([5, 6, 5, 6]);
    expect(await values('scalar')).toEqual([7]);
  });

  it('reads half, bfloat16 and int64 storages with their dtypes', async () => {
    const bin = writeBin('dtypes.bin', {
      'archive/data.pkl': stateDictPickle({
        half: { key: '0', numel: 2, shape: [2], stride: [1], storageClass: 'HalfStorage' },
        brain: { key: '1', numel: 2, shape: [2], stride: [1], storageClass: 'BFloat16Storage' },
        ids: { key: '2', numel: 2, shape: [1, 2], stride: [2, 1], storageClass: 'LongStorage' },
      }),
      'archive/data/0': new Uint8Array(new Uint16Array([0x3c00, 0xc000]).buffer),
      'archive/data/1': new Uint8Array(new Uint16Array([0x3eab, 0x4049]).buffer),
      'archive/data/2': new Uint8Array(new BigInt64Array([3n, -4n]).buffer),
    });
    const tensors = await convertedTensors(bin);
    expect([...tensors.values()].map((t) => [t.name, t.dtype])).toEqual([
      ['ids', 'I64'],
      ['brain', 'BF16'],
      ['half', 'F16'],
    ]);
    expect(Array.from(await readTensorAsFloat32(tensors.get('half')!))).toEqual([1, -2]);
    expect(Array.from(await readTensorAsFloat32(tensors.get('brain')!))).toEqual([0.333984375, 3.140625]);
    expect(Array.from(await readTensorAsFloat32(tensors.get('ids')!))).toEqual([3, -4]);
  });

  const refusals: Array<[string, () => Record<string, Uint8Array>, RegExp, number?]> = [
    [
      'a view that reaches past its storage',
      () => ({ 'a/data.pkl': stateDictPickle({ w: { key: '0', numel: 4, shape: [4], stride: [1], offset: 1 } }), 'a/data/0': floats(1, 2, 3, 4) }),
      /a tensor of shape \[4\] \(offset 1, strides \[1\]\) reaches past the end of storage '0' \(4 elements\)/,
    ],
    ['a missing storage record', () => ({ 'a/data.pkl': stateDictPickle({ w: { key: '7', numel: 1, shape: [1], stride: [1] } }) }), /storage '7' is missing from the archive/],
    [
      'a storage record of the wrong size',
      () => ({ 'a/data.pkl': stateDictPickle({ w: { key: '0', numel: 2, shape: [2], stride: [1] } }), 'a/data/0': floats(1) }),
      /storage '0' should hold 2 F32 elements \(8 bytes\) but its record has 4 bytes/,
    ],
    ['a zip that is not a checkpoint', () => ({ 'readme.txt': new Uint8Array(3) }), /not a torch checkpoint: it has no single <name>\/data\.pkl/],
    [
      'a big-endian checkpoint',
      () => ({ 'a/data.pkl': stateDictPickle({}), 'a/byteorder': new TextEncoder().encode('big') }),
      /saved with byte order 'big'; BLIP Studio reads little-endian checkpoints only/,
    ],
    [
      'an entry that is not a tensor',
      () => ({ 'a/data.pkl': new PickleBuilder().op(0x7d).text('step').int(3).op(0x73).bytes() }),
      /entry 'step' holds an int, not a tensor/,
    ],
    [
      'a training checkpoint',
      () => ({ 'a/data.pkl': new PickleBuilder().op(0x7d).text('state_dict').op(0x7d).op(0x73).bytes() }),
      /entry 'state_dict' holds a dictionary, not a tensor \(this looks like a training checkpoint/,
    ],
    ['a compressed record', () => ({ 'a/data.pkl': stateDictPickle({}) }), /record 'a\/data\.pkl' is compressed \(method 8\)/, 8],
    [
      'an unknown storage class',
      () => ({ 'a/data.pkl': stateDictPickle({ w: { key: '0', numel: 1, shape: [1], stride: [1], storageClass: 'ComplexFloatStorage' } }) }),
      /refused to load: the pickle asks for the Python global 'torch\.ComplexFloatStorage'/,
    ],
  ];

  it.each(refusals)('refuses %s, naming the file', async (_case, records, problem, method) => {
    const bin = writeBin('bad.bin', records(), method);
    await expect(convertBinToSafetensors(bin, { cacheDir: join(temp.path, 'cache') })).rejects.toThrow(problem);
    await expect(openTorchCheckpoint(bin)).rejects.toThrow(`${bin}: `);
  });

  it('refuses a file that is neither format', async () => {
    const path = join(temp.path, 'pytorch_model.bin');
    writeFileSync(path, '<html>404 Not Found</html>');
    await expect(openTorchCheckpoint(path)).rejects.toThrow(`${path}: not a PyTorch checkpoint: it is neither a torch zip archive nor the legacy torch format`);
  });
});

describe('allow-listing unpickler', () => {
  const globals = new Map<string, PickleValue>([['collections.OrderedDict', new PickleCallable('collections.OrderedDict', () => new PickleDict())]]);

  it('refuses a global that is not allowed at the GLOBAL opcode, before anything after it runs', () => {
    let called = false;
    const spy = new Map<string, PickleValue>([...globals, ['ok.fn', new PickleCallable('ok.fn', () => ((called = true), null))]]);
    // os.system('x') followed by a call to an allowed function: the refusal must come first.
    const pickle = new PickleBuilder().global('os', 'system').text('x').op(0x85, 0x52).global('ok', 'fn').op(0x29, 0x52).bytes();
    expect(() => unpickle(pickle, { globals: spy })).toThrow(PickleRefusedError);
    expect(() => unpickle(pickle, { globals: spy })).toThrow("the pickle asks for the Python global 'os.system', which is not on the allow-list (at byte 2 of the pickle)");
    expect(called).toBe(false);
    // The protocol-4 spelling of the same thing.
    const stackGlobal = new PickleBuilder().text('builtins').text('eval').op(0x93).bytes();
    expect(() => unpickle(stackGlobal, { globals })).toThrow("'builtins.eval', which is not on the allow-list");
  });

  it.each([
    ['INST', [0x69, ...new TextEncoder().encode('os\nsystem\n')], /opcode INST \(0x69\) is not allowed/],
    ['OBJ', [0x28, 0x6f], /opcode OBJ \(0x6f\) is not allowed/],
    ['NEWOBJ', [0x4e, 0x29, 0x81], /opcode NEWOBJ \(0x81\) is not allowed/],
    ['EXT1', [0x82, 1], /opcode EXT1 \(0x82\) is not allowed/],
    ['PERSID without a loader', [0x4e, 0x51], /a persistent id \(BINPERSID\) is not allowed here/],
    ['REDUCE on a non-function', [0x4e, 0x29, 0x52], /REDUCE would call None, which is not an allowed function/],
    ['BUILD on a list', [0x5d, 0x7d, 0x62], /BUILD on a list with a dictionary is not allowed/],
    ['an unknown opcode', [0xff], /malformed pickle at byte 2: unknown opcode 0xff/],
    ['a huge LONG4', [0x8b, 0xff, 0xff, 0xff, 0x7f], /an integer of 2147483647 bytes is not allowed/],
  ])('refuses %s', (_case, opcodes, problem) => {
    expect(() => unpickle(new PickleBuilder().op(...opcodes).bytes(), { globals })).toThrow(problem);
  });

  it('reads the values torch writes: ints of every width, floats, strings, tuples, memo, dicts and lists', () => {
    const pickle = new PickleBuilder()
      .op(0x5d, 0x71, 0x00) // EMPTY_LIST, BINPUT 0
      .mark()
      .op(0x4b, 0xff) // BININT1 255
      .op(0x4d, 0x34, 0x12) // BININT2 0x1234
      .int(-5)
      .op(0x8a, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01) // LONG1 2^32
      .op(0x8a, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01) // LONG1 2^64 (a bigint)
      .op(0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0) // BINFLOAT 1.5
      .op(0x8c, 2, 0x68, 0x69) // SHORT_BINUNICODE 'hi'
      .op(0x88, 0x89, 0x4e) // True, False, None
      .op(0x4b, 1, 0x4b, 2, 0x86) // TUPLE2
      .op(0x68, 0x00) // BINGET 0: the list itself
      .op(0x65) // APPENDS
      .bytes();
    const { value, end } = unpickle(pickle, { globals });
    expect(end).toBe(pickle.length);
    const items = (value as { items: PickleValue[] }).items;
    expect(items.slice(0, 10)).toEqual([255, 0x1234, -5, 2 ** 32, 2n ** 64n, 1.5, 'hi', true, false, null]);
    expect((items[10] as { items: PickleValue[] }).items).toEqual([1, 2]);
    expect(items[11]).toBe(value);
  });

  it('reports a pickle cut short', () => {
    const pickle = new PickleBuilder().text('abcdef').bytes();
    expect(() => unpickle(pickle.subarray(0, 6), { globals })).toThrow(/the pickle ends before its STOP opcode/);
  });
});

describe('strided copies', () => {
  it('knows contiguous views, ignoring the stride of size-1 dimensions', () => {
    expect(isContiguous([2, 3], [3, 1])).toBe(true);
    expect(isContiguous([1, 3], [99, 1])).toBe(true);
    expect(isContiguous([3, 2], [1, 3])).toBe(false);
    expect(isContiguous([], [])).toBe(true);
  });

  it('gathers a 3-D permutation element by element', () => {
    // Source: a [2, 3, 4] array of bytes 0..23; view: its permutation to [4, 2, 3] (strides [1, 12, 4]).
    const source = Uint8Array.from({ length: 24 }, (_, i) => i);
    const gathered = gatherStrided(source, [4, 2, 3], [1, 12, 4], 1);
    const expected: number[] = [];
    for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) expected.push(i * 12 + j * 4 + k);
    expect(Array.from(gathered)).toEqual(expected);
  });

  it('keeps every bit of 2- and 8-byte elements, even from an unaligned source', () => {
    const matrix = new BigInt64Array([1n, -2n, 3n, 2n ** 62n, 5n, -(2n ** 63n)]); // 2×3
    const unaligned = new Uint8Array(49).subarray(1);
    unaligned.set(new Uint8Array(matrix.buffer));
    const transposed = gatherStrided(unaligned, [3, 2], [1, 3], 8);
    expect(Array.from(new BigInt64Array(transposed.buffer))).toEqual([1n, 2n ** 62n, -2n, 5n, 3n, -(2n ** 63n)]);
    const halves = new Uint8Array(new Uint16Array([0x7e01, 0xfc00, 0x0001, 0x8000]).buffer); // a NaN payload survives
    expect(Array.from(new Uint16Array(gatherStrided(halves, [2, 2], [1, 2], 2).buffer))).toEqual([0x7e01, 0x0001, 0xfc00, 0x8000]);
  });
});
