/**
 * The legacy torch checkpoint (torch.save before 1.6, or `_use_new_zipfile_serialization=False`):
 * five pickles in a row (magic number, protocol version 1001, system info, the state dict with
 * storages as persistent ids, the list of storage keys), then each storage in that key order as an
 * int64 element count followed by its raw little-endian elements.
 */
import type { FileHandle } from 'node:fs/promises';
import { DTYPE_BYTES } from './dtypes';
import { readRange } from './file-range';
import { PickleDict, PickleFormatError, PickleList, PickleTruncatedError, unpickle, type PickleValue } from './pickle';
import type { TorchCheckpoint, TorchStorageLocation, TorchTensor } from './torch-checkpoint';
import { TorchStorageRef, parseStoragePersistentId, sharedStorage, torchPickleGlobals, unpickleStateDict, type TorchTensorRef } from './torch-pickle';
import { WeightsFileError } from './weights-error';

const LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;
const FIRST_READ_BYTES = 1024 * 1024;
const MAX_PICKLES_BYTES = 128 * 1024 * 1024;
const NUMEL_BYTES = 8;

interface LegacyPickles {
  tensors: Map<string, TorchTensorRef>;
  storages: Map<string, TorchStorageRef>;
  keys: string[];
  end: number;
}

export async function readLegacyTorchCheckpoint(handle: FileHandle, fileSize: number, file: string): Promise<TorchCheckpoint> {
  const pickles = await readPickles(handle, fileSize, file);

  // The storages follow the pickles back to back, in the order of the key list.
  const locations = new Map<string, TorchStorageLocation>();
  let position = pickles.end;
  for (const key of pickles.keys) {
    const storage = pickles.storages.get(key);
    if (!storage) throw new WeightsFileError(file, `the storage list names ${JSON.stringify(key)}, which no tensor uses: the file is corrupt`);
    if (locations.has(key)) throw new WeightsFileError(file, `the storage list names ${JSON.stringify(key)} twice: the file is corrupt`);
    if (position + NUMEL_BYTES > fileSize) throw truncated(file);
    const numel = new DataView((await readRange(handle, position, NUMEL_BYTES)).buffer).getBigInt64(0, true);
    if (numel !== BigInt(storage.numel)) {
      throw new WeightsFileError(file, `storage '${key}' should hold ${storage.numel} elements but its block says ${numel}: the file is corrupt`);
    }
    const fileOffset = position + NUMEL_BYTES;
    position = fileOffset + storage.numel * DTYPE_BYTES[storage.dtype];
    if (position > fileSize) throw truncated(file);
    locations.set(key, { key, dtype: storage.dtype, numel: storage.numel, fileOffset });
  }

  const tensors = new Map<string, TorchTensor>();
  for (const [name, tensor] of pickles.tensors) {
    const storage = locations.get(tensor.storage.key);
    if (!storage) throw new WeightsFileError(file, `tensor '${name}' uses storage '${tensor.storage.key}', which the storage list omits: the file is corrupt`);
    tensors.set(name, { name, dtype: tensor.dtype, shape: tensor.shape, stride: tensor.stride, storageOffset: tensor.storageOffset, storage });
  }
  return { file, format: 'torch-legacy', tensors };
}

/** Reads a growing prefix of the file until all five pickles fit in it. */
async function readPickles(handle: FileHandle, fileSize: number, file: string): Promise<LegacyPickles> {
  for (let length = Math.min(fileSize, FIRST_READ_BYTES); ; length = Math.min(fileSize, length * 4, MAX_PICKLES_BYTES)) {
    const head = await readRange(handle, 0, length);
    try {
      return parsePickles(head, file);
    } catch (error) {
      if (!(error instanceof PickleTruncatedError)) throw error;
      if (length === fileSize) throw truncated(file);
      if (length === MAX_PICKLES_BYTES) throw new WeightsFileError(file, `its pickles exceed ${MAX_PICKLES_BYTES} bytes, far more than a state dict needs`);
    }
  }
}

function parsePickles(head: Uint8Array, file: string): LegacyPickles {
  const globals = torchPickleGlobals();
  const magic = unpickle(head, { globals });
  if (magic.value !== LEGACY_MAGIC_NUMBER) throw new WeightsFileError(file, 'not a legacy torch checkpoint: wrong magic number');
  const protocol = unpickle(head, { globals, start: magic.end });
  if (protocol.value !== LEGACY_PROTOCOL_VERSION) throw new WeightsFileError(file, `a legacy torch checkpoint of unknown protocol version ${String(protocol.value)}`);
  const systemInfo = unpickle(head, { globals, start: protocol.end });
  if (!(systemInfo.value instanceof PickleDict) || systemInfo.value.entries.get('little_endian') !== true) {
    throw new WeightsFileError(file, 'a legacy torch checkpoint saved on a big-endian machine; BLIP Studio reads little-endian checkpoints only: re-save it with torch on a PC or Mac');
  }

  const storages = new Map<string, TorchStorageRef>();
  const persistentLoad = (id: PickleValue): TorchStorageRef => {
    const { storageType, key, numel, viewMetadata } = parseStoragePersistentId(id);
    if (viewMetadata !== null) {
      throw new PickleFormatError(`storage '${key}' is a storage view (a pre-1.0 torch feature); load the file in Python and save it again with torch.save`);
    }
    return sharedStorage(storages, new TorchStorageRef(key, storageType.dtype, numel));
  };
  const stateDict = unpickleStateDict(head, persistentLoad, systemInfo.end);
  const keyList = unpickle(head, { globals, start: stateDict.end });
  if (!(keyList.value instanceof PickleList) || !keyList.value.items.every((key): key is string => typeof key === 'string')) {
    throw new WeightsFileError(file, 'a legacy torch checkpoint whose storage list is not a list of keys: the file is corrupt');
  }
  return { tensors: stateDict.tensors, storages, keys: keyList.value.items, end: keyList.end };
}

function truncated(file: string): WeightsFileError {
  return new WeightsFileError(file, 'the checkpoint ends early: the file is truncated; download it again');
}
