/**
 * The allow-list for PyTorch state dicts, and the step from an unpickled value to named tensor
 * references. The allowed globals are exactly what `torch.save(model.state_dict())` writes: the
 * OrderedDict container, the tensor and parameter rebuild functions and the typed storage classes.
 * Here they only build descriptions (which storage, which offset, which shape and strides); bytes are
 * read later, from the file, by the format readers.
 */
import { safeElementCount, type WeightDtype } from './dtypes';
import {
  PickleCallable,
  PickleDict,
  PickleHostObject,
  PickleTuple,
  describePickleValue,
  unpickle,
  PickleFormatError,
  PickleRefusedError,
  type PickleValue,
} from './pickle';

/** torch storage class → element type. Complex and quantized storages are not model weights we use. */
export const TORCH_STORAGE_DTYPES: Readonly<Record<string, WeightDtype>> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

export class TorchStorageType extends PickleHostObject {
  constructor(
    readonly className: string,
    readonly dtype: WeightDtype,
  ) {
    super();
  }
  get description(): string {
    return `the storage class torch.${this.className}`;
  }
}

/** One storage record of the file (`data/<key>` in a zip, a numbered block in the legacy format). */
export class TorchStorageRef extends PickleHostObject {
  constructor(
    readonly key: string,
    readonly dtype: WeightDtype,
    /** Element count of the whole storage. */
    readonly numel: number,
  ) {
    super();
  }
  get description(): string {
    return `storage '${this.key}'`;
  }
}

/** A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage, counted in elements. */
export class TorchTensorRef extends PickleHostObject {
  constructor(
    readonly storage: TorchStorageRef,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {
    super();
  }
  get description(): string {
    return 'a tensor';
  }
  get dtype(): WeightDtype {
    return this.storage.dtype;
  }
}

export interface TorchStorageId {
  readonly storageType: TorchStorageType;
  readonly key: string;
  readonly numel: number;
  /** Legacy format only: (view key, offset, size) of a storage view, unsupported. */
  readonly viewMetadata: PickleValue;
}

/** Parses the persistent id torch writes for a storage: ('storage', StorageType, key, location, numel[, view_metadata]). */
export function parseStoragePersistentId(id: PickleValue): TorchStorageId {
  if (!(id instanceof PickleTuple)) throw new PickleFormatError(`a persistent id that is ${describePickleValue(id)}, not a tuple`);
  const [kind, storageType, key, location, numel, viewMetadata = null] = id.items;
  if (kind !== 'storage') {
    const described = typeof kind === 'string' ? JSON.stringify(kind) : describePickleValue(kind ?? null);
    throw new PickleRefusedError(`a persistent id of kind ${described} is not allowed (only tensor storages are)`);
  }
  if (!(storageType instanceof TorchStorageType)) throw new PickleFormatError(`a storage whose type is ${describePickleValue(storageType ?? null)}`);
  if (typeof key !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(key)) throw new PickleFormatError(`a storage key ${JSON.stringify(key)} that is not a plain name`);
  if (typeof location !== 'string') throw new PickleFormatError(`storage '${key}' has a location that is not a string`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw new PickleFormatError(`storage '${key}' has an invalid element count`);
  if (id.items.length > 6) throw new PickleFormatError(`storage '${key}' has a persistent id with ${id.items.length} fields`);
  return { storageType, key, numel, viewMetadata };
}

/** What GLOBAL may name in a torch checkpoint; the storage classes are markers, not callables. */
export function torchPickleGlobals(): ReadonlyMap<string, PickleValue> {
  const globals = new Map<string, PickleValue>([
    ['collections.OrderedDict', new PickleCallable('collections.OrderedDict', orderedDict)],
    ['torch._utils._rebuild_tensor_v2', new PickleCallable('torch._utils._rebuild_tensor_v2', rebuildTensorV2)],
    ['torch._utils._rebuild_parameter', new PickleCallable('torch._utils._rebuild_parameter', rebuildParameter)],
    ['torch._utils._rebuild_parameter_with_state', new PickleCallable('torch._utils._rebuild_parameter_with_state', rebuildParameter)],
  ]);
  for (const [className, dtype] of Object.entries(TORCH_STORAGE_DTYPES)) globals.set(`torch.${className}`, new TorchStorageType(className, dtype));
  return globals;
}

/**
 * Unpickles a state dict: a (Ordered)dict from parameter names to tensors. Anything else in it (a
 * nested training checkpoint, an int, a list) is refused with the entry's name.
 */
export function unpickleStateDict(
  bytes: Uint8Array,
  persistentLoad: (id: PickleValue) => TorchStorageRef,
  start = 0,
): { tensors: Map<string, TorchTensorRef>; end: number } {
  const { value, end } = unpickle(bytes, { globals: torchPickleGlobals(), persistentLoad, start });
  if (!(value instanceof PickleDict)) throw new PickleFormatError(`the checkpoint holds ${describePickleValue(value)}, not a dictionary of tensors`);
  const tensors = new Map<string, TorchTensorRef>();
  for (const [name, tensor] of value.entries) {
    if (typeof name !== 'string') throw new PickleFormatError(`the checkpoint has a key that is ${describePickleValue(name)}, not a parameter name`);
    if (!(tensor instanceof TorchTensorRef)) {
      const hint = tensor instanceof PickleDict ? ' (this looks like a training checkpoint; BLIP Studio needs the weights alone, as diffusers saves them)' : '';
      throw new PickleFormatError(`entry '${name}' holds ${describePickleValue(tensor)}, not a tensor${hint}`);
    }
    tensors.set(name, tensor);
  }
  return { tensors, end };
}

function orderedDict(args: readonly PickleValue[]): PickleValue {
  if (args.length !== 0) throw new PickleRefusedError('OrderedDict called with arguments (torch never does)');
  return new PickleDict();
}

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
function rebuildTensorV2(args: readonly PickleValue[]): PickleValue {
  if (args.length !== 6 && args.length !== 7) throw new PickleFormatError(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
  const [storage, storageOffset, size, stride] = args as [PickleValue, PickleValue, PickleValue, PickleValue];
  if (!(storage instanceof TorchStorageRef)) throw new PickleFormatError(`a tensor whose storage is ${describePickleValue(storage)}`);
  const shape = intTuple(size, 'size');
  const strides = intTuple(stride, 'stride');
  if (shape.length !== strides.length) throw new PickleFormatError(`a tensor on ${storage.description} with ${shape.length} sizes but ${strides.length} strides`);
  if (typeof storageOffset !== 'number' || !Number.isSafeInteger(storageOffset) || storageOffset < 0) {
    throw new PickleFormatError(`a tensor on ${storage.description} with an invalid storage offset`);
  }
  // The view must stay inside its storage, or a crafted file could make us read other records.
  const elements = safeElementCount(shape);
  if (elements === null) throw new PickleFormatError(`a tensor on ${storage.description} with an impossible shape [${shape.join(', ')}]`);
  if (elements > 0) {
    let last = storageOffset;
    for (let i = 0; i < shape.length; i++) last += (shape[i]! - 1) * strides[i]!;
    if (!Number.isSafeInteger(last) || last >= storage.numel) {
      throw new PickleFormatError(
        `a tensor of shape [${shape.join(', ')}] (offset ${storageOffset}, strides [${strides.join(', ')}]) reaches past the end of ${storage.description} (${storage.numel} elements)`,
      );
    }
  }
  return new TorchTensorRef(storage, storageOffset, shape, strides);
}

/** _rebuild_parameter(data, requires_grad, backward_hooks[, state]): a Parameter is its tensor. */
function rebuildParameter(args: readonly PickleValue[]): PickleValue {
  const [data] = args;
  if (!(data instanceof TorchTensorRef)) throw new PickleFormatError(`a Parameter whose data is ${describePickleValue(data ?? null)}`);
  return data;
}

function intTuple(value: PickleValue, what: string): number[] {
  if (!(value instanceof PickleTuple)) throw new PickleFormatError(`a tensor ${what} that is ${describePickleValue(value)}, not a tuple`);
  return value.items.map((item) => {
    if (typeof item !== 'number' || !Number.isSafeInteger(item) || item < 0) throw new PickleFormatError(`a tensor ${what} with an entry that is not a non-negative integer`);
    return item;
  });
}

/** One storage may back several tensors (tied weights); every mention must agree on type and size. */
export function sharedStorage(storages: Map<string, TorchStorageRef>, storage: TorchStorageRef): TorchStorageRef {
  const known = storages.get(storage.key);
  if (!known) {
    storages.set(storage.key, storage);
    return storage;
  }
  if (known.dtype !== storage.dtype || known.numel !== storage.numel) {
    throw new PickleFormatError(`storage '${storage.key}' is described twice, differently (${known.dtype}×${known.numel} and ${storage.dtype}×${storage.numel})`);
  }
  return known;
}
