/**
 * The torch zip checkpoint (torch.save since 1.6): one folder holding `data.pkl` (the state dict,
 * pickled with storages as persistent ids), `data/<key>` (one uncompressed record per storage, raw
 * little-endian elements), `version` and, since torch 1.10, `byteorder`.
 */
import type { FileHandle } from 'node:fs/promises';
import { DTYPE_BYTES } from './dtypes';
import { readRange } from './file-range';
import { PickleFormatError, type PickleValue } from './pickle';
import type { TorchCheckpoint, TorchStorageLocation, TorchTensor } from './torch-checkpoint';
import { TorchStorageRef, parseStoragePersistentId, sharedStorage, unpickleStateDict } from './torch-pickle';
import { WeightsFileError } from './weights-error';
import { ZipFormatError, readZipRecords, type ZipRecord } from './zip-archive';

/** A state dict's pickle is ~100 bytes per tensor; this leaves room for a million tensors. */
const MAX_PICKLE_BYTES = 128 * 1024 * 1024;

export async function readTorchZipCheckpoint(handle: FileHandle, fileSize: number, file: string): Promise<TorchCheckpoint> {
  let records: Map<string, ZipRecord>;
  try {
    records = await readZipRecords(handle, fileSize);
  } catch (error) {
    if (error instanceof ZipFormatError) throw new WeightsFileError(file, error.message, { cause: error });
    throw error;
  }

  const pickleRecords = [...records.values()].filter((record) => /^[^/]+\/data\.pkl$/.test(record.name));
  if (pickleRecords.length !== 1) throw new WeightsFileError(file, 'a zip archive, but not a torch checkpoint: it has no single <name>/data.pkl');
  const pickleRecord = pickleRecords[0]!;
  const root = pickleRecord.name.slice(0, -'data.pkl'.length);

  const byteOrder = records.get(`${root}byteorder`);
  if (byteOrder) {
    const order = new TextDecoder().decode(await readRange(handle, byteOrder.dataOffset, Math.min(byteOrder.size, 16))).trim();
    if (order !== 'little') throw new WeightsFileError(file, `saved with byte order '${order}'; BLIP Studio reads little-endian checkpoints only: re-save it with torch on a PC or Mac`);
  }
  if (pickleRecord.size > MAX_PICKLE_BYTES) throw new WeightsFileError(file, `its data.pkl is ${pickleRecord.size} bytes, far more than a state dict needs`);
  const pickle = await readRange(handle, pickleRecord.dataOffset, pickleRecord.size);

  const storages = new Map<string, TorchStorageRef>();
  const persistentLoad = (id: PickleValue): TorchStorageRef => {
    const { storageType, key, numel, viewMetadata } = parseStoragePersistentId(id);
    if (viewMetadata !== null) throw new PickleFormatError(`storage '${key}' has a legacy view description`);
    return sharedStorage(storages, new TorchStorageRef(key, storageType.dtype, numel));
  };
  const { tensors } = unpickleStateDict(pickle, persistentLoad);

  const locations = new Map<string, TorchStorageLocation>();
  for (const storage of storages.values()) {
    const record = records.get(`${root}data/${storage.key}`);
    if (!record) throw new WeightsFileError(file, `storage '${storage.key}' is missing from the archive (no ${root}data/${storage.key}): the file is corrupt`);
    const expected = storage.numel * DTYPE_BYTES[storage.dtype];
    if (record.size !== expected) {
      throw new WeightsFileError(file, `storage '${storage.key}' should hold ${storage.numel} ${storage.dtype} elements (${expected} bytes) but its record has ${record.size} bytes: the file is corrupt`);
    }
    locations.set(storage.key, { key: storage.key, dtype: storage.dtype, numel: storage.numel, fileOffset: record.dataOffset, crc32: record.crc32 });
  }

  const located = new Map<string, TorchTensor>();
  for (const [name, tensor] of tensors) {
    const storage = locations.get(tensor.storage.key)!;
    located.set(name, { name, dtype: tensor.dtype, shape: tensor.shape, stride: tensor.stride, storageOffset: tensor.storageOffset, storage });
  }
  return { file, format: 'torch-zip', tensors: located };
}
