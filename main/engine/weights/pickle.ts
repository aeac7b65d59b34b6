/**
 * An allow-listing unpickler: a stack machine over the pickle opcodes that `torch.save` emits
 * (protocol 2, plus the few protocol-4 ones a re-saved file may use). It executes nothing from the
 * file. GLOBAL may name only entries of the caller's allow-list (anything else is refused right there,
 * by name, before any later opcode runs); REDUCE may call only the caller's own functions that GLOBAL
 * produced; every other opcode that could build arbitrary objects (INST, OBJ, NEWOBJ, EXT*, …) is
 * refused. Values are plain data classes, never Python-like objects with behaviour.
 */

export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

export class PickleList {
  readonly items: PickleValue[] = [];
}

export type PickleDictKey = string | number | bigint | boolean | null;

export class PickleDict {
  readonly entries = new Map<PickleDictKey, PickleValue>();
  /** Instance attributes set by BUILD, e.g. the `_metadata` that torch attaches to a state dict. */
  attributes: PickleDict | null = null;
}

/** A function from the allow-list; REDUCE calls it with the tuple's items. */
export class PickleCallable {
  constructor(
    readonly qualifiedName: string,
    readonly call: (args: readonly PickleValue[]) => PickleValue,
  ) {}
}

/** Base of the values that allow-listed functions make (torch storages and tensors). */
export abstract class PickleHostObject {
  abstract readonly description: string;
}

export type PickleValue = null | boolean | number | bigint | string | PickleTuple | PickleList | PickleDict | PickleCallable | PickleHostObject;

export interface UnpickleOptions {
  /** 'module.name' → what GLOBAL pushes. Names not listed are refused. */
  readonly globals: ReadonlyMap<string, PickleValue>;
  /** Resolves BINPERSID ids; without it BINPERSID is refused. */
  readonly persistentLoad?: (id: PickleValue) => PickleValue;
  /** Byte offset of the pickle within `bytes` (legacy torch files hold several pickles in a row). */
  readonly start?: number;
}

export interface UnpickleResult {
  readonly value: PickleValue;
  /** Offset just past the STOP opcode. */
  readonly end: number;
}

/** The pickle asks for something that is not allowed; nothing was executed. */
export class PickleRefusedError extends Error {
  override readonly name = 'PickleRefusedError';
}

/** The pickle is malformed (bad structure, wrong types); nothing was executed. */
export class PickleFormatError extends Error {
  override readonly name: string = 'PickleFormatError';
}

/** The bytes end before the pickle's STOP opcode. */
export class PickleTruncatedError extends PickleFormatError {
  override readonly name = 'PickleTruncatedError';
}

/** Opcodes we refuse, by name, so the error says what the file tried to do. */
const REFUSED_OPCODE_NAMES: Readonly<Record<number, string>> = {
  0x30: 'POP',
  0x31: 'POP_MARK',
  0x32: 'DUP',
  0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES',
  0x46: 'FLOAT',
  0x49: 'INT',
  0x4c: 'LONG',
  0x50: 'PERSID',
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE',
  0x64: 'DICT',
  0x67: 'GET',
  0x69: 'INST',
  0x6c: 'LIST',
  0x6f: 'OBJ',
  0x70: 'PUT',
  0x81: 'NEWOBJ',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const MAX_GLOBAL_NAME_BYTES = 256;
const MAX_PROTOCOL = 5;
const MAX_LONG_BYTES = 16;

export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  return new PickleMachine(bytes, options).run();
}

export function describePickleValue(value: PickleValue): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return 'a bool';
  if (typeof value === 'bigint') return 'an int';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an int' : 'a float';
  if (typeof value === 'string') return 'a string';
  if (value instanceof PickleTuple) return 'a tuple';
  if (value instanceof PickleList) return 'a list';
  if (value instanceof PickleDict) return 'a dictionary';
  if (value instanceof PickleCallable) return `the function ${value.qualifiedName}`;
  return value.description;
}

class PickleMachine {
  private position: number;
  private stack: PickleValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PickleValue>();
  private readonly view: DataView;
  private opcodeStart = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.position = options.start ?? 0;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  run(): UnpickleResult {
    for (;;) {
      this.opcodeStart = this.position;
      const opcode = this.byte();
      switch (opcode) {
        case 0x80: {
          // PROTO
          const protocol = this.byte();
          if (protocol > MAX_PROTOCOL) throw this.formatError(`pickle protocol ${protocol} is newer than any Python writes`);
          break;
        }
        case 0x95: // FRAME: a length hint for buffered readers; we hold all bytes already.
          this.take(8);
          break;
        case 0x7d: // EMPTY_DICT
          this.stack.push(new PickleDict());
          break;
        case 0x5d: // EMPTY_LIST
          this.stack.push(new PickleList());
          break;
        case 0x29: // EMPTY_TUPLE
          this.stack.push(new PickleTuple([]));
          break;
        case 0x28: // MARK
          this.marks.push(this.stack.length);
          break;
        case 0x74: // TUPLE
          this.stack.push(new PickleTuple(this.popToMark()));
          break;
        case 0x85: // TUPLE1
        case 0x86: // TUPLE2
        case 0x87: {
          // TUPLE3
          const count = opcode - 0x84;
          this.stack.push(new PickleTuple(this.popMany(count)));
          break;
        }
        case 0x71: // BINPUT
          this.memo.set(this.byte(), this.top());
          break;
        case 0x72: // LONG_BINPUT
          this.memo.set(this.uint32(), this.top());
          break;
        case 0x94: // MEMOIZE
          this.memo.set(this.memo.size, this.top());
          break;
        case 0x68: // BINGET
          this.stack.push(this.memoGet(this.byte()));
          break;
        case 0x6a: // LONG_BINGET
          this.stack.push(this.memoGet(this.uint32()));
          break;
        case 0x4a: // BININT
          this.stack.push(this.view.getInt32(this.take(4), true));
          break;
        case 0x4b: // BININT1
          this.stack.push(this.byte());
          break;
        case 0x4d: // BININT2
          this.stack.push(this.view.getUint16(this.take(2), true));
          break;
        case 0x8a: // LONG1
          this.stack.push(this.littleEndianInteger(this.byte()));
          break;
        case 0x8b: // LONG4
          this.stack.push(this.littleEndianInteger(this.uint32()));
          break;
        case 0x58: // BINUNICODE
          this.stack.push(this.utf8(this.uint32()));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.stack.push(this.utf8(this.byte()));
          break;
        case 0x8d: // BINUNICODE8
          this.stack.push(this.utf8(this.uint64()));
          break;
        case 0x47: // BINFLOAT (big-endian, unlike everything else)
          this.stack.push(this.view.getFloat64(this.take(8), false));
          break;
        case 0x88: // NEWTRUE
          this.stack.push(true);
          break;
        case 0x89: // NEWFALSE
          this.stack.push(false);
          break;
        case 0x4e: // NONE
          this.stack.push(null);
          break;
        case 0x73: {
          // SETITEM
          const value = this.pop();
          const key = this.pop();
          this.setItems(this.dictOnTop(), [key, value]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.popToMark();
          this.setItems(this.dictOnTop(), items);
          break;
        }
        case 0x61: {
          // APPEND
          const value = this.pop();
          this.listOnTop().items.push(value);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = this.popToMark();
          this.listOnTop().items.push(...items);
          break;
        }
        case 0x63: {
          // GLOBAL "module\nname\n"
          const module = this.line();
          const name = this.line();
          this.stack.push(this.global(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') throw this.formatError('STACK_GLOBAL needs two strings');
          this.stack.push(this.global(module, name));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const callable = this.pop();
          if (!(callable instanceof PickleCallable)) throw this.refused(`REDUCE would call ${describePickleValue(callable)}, which is not an allowed function`);
          if (!(args instanceof PickleTuple)) throw this.formatError(`REDUCE needs an argument tuple, got ${describePickleValue(args)}`);
          this.stack.push(this.callAllowed(callable, args.items));
          break;
        }
        case 0x62: {
          // BUILD: only sets instance attributes of a dictionary (OrderedDict's `_metadata`).
          const state = this.pop();
          const target = this.top();
          if (!(target instanceof PickleDict) || !(state === null || state instanceof PickleDict)) {
            throw this.refused(`BUILD on ${describePickleValue(target)} with ${describePickleValue(state)} is not allowed`);
          }
          target.attributes = state;
          break;
        }
        case 0x51: {
          // BINPERSID
          const id = this.pop();
          const persistentLoad = this.options.persistentLoad;
          if (!persistentLoad) throw this.refused('a persistent id (BINPERSID) is not allowed here');
          this.stack.push(this.callAllowed(new PickleCallable('persistent_load', () => persistentLoad(id)), []));
          break;
        }
        case 0x2e: {
          // STOP
          if (this.marks.length > 0 || this.stack.length !== 1) throw this.formatError('STOP with an unbalanced stack');
          return { value: this.stack[0]!, end: this.position };
        }
        default: {
          const name = REFUSED_OPCODE_NAMES[opcode];
          throw name ? this.refused(`opcode ${name} (0x${hex(opcode)}) is not allowed`) : this.formatError(`unknown opcode 0x${hex(opcode)}`);
        }
      }
    }
  }

  private global(module: string, name: string): PickleValue {
    const qualifiedName = `${module}.${name}`;
    const value = this.options.globals.get(qualifiedName);
    if (value === undefined) {
      throw this.refused(`the pickle asks for the Python global '${qualifiedName}', which is not on the allow-list`);
    }
    return value;
  }

  private callAllowed(callable: PickleCallable, args: readonly PickleValue[]): PickleValue {
    try {
      return callable.call(args);
    } catch (error) {
      if (error instanceof PickleRefusedError || error instanceof PickleFormatError) throw error;
      throw this.formatError(`${callable.qualifiedName}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private setItems(dict: PickleDict, items: readonly PickleValue[]): void {
    if (items.length % 2 !== 0) throw this.formatError('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i]!;
      if (!isDictKey(key)) throw this.refused(`a dictionary key that is ${describePickleValue(key)} is not allowed`);
      dict.entries.set(key, items[i + 1]!);
    }
  }

  private dictOnTop(): PickleDict {
    const top = this.top();
    if (!(top instanceof PickleDict)) throw this.formatError(`SETITEM(S) on ${describePickleValue(top)}`);
    return top;
  }

  private listOnTop(): PickleList {
    const top = this.top();
    if (!(top instanceof PickleList)) throw this.formatError(`APPEND(S) on ${describePickleValue(top)}`);
    return top;
  }

  private memoGet(index: number): PickleValue {
    const value = this.memo.get(index);
    if (value === undefined) throw this.formatError(`memo entry ${index} is read before it is written`);
    return value;
  }

  private top(): PickleValue {
    if (this.stack.length === 0 || this.stack.length === this.marks.at(-1)) throw this.formatError('stack underflow');
    return this.stack[this.stack.length - 1]!;
  }

  private pop(): PickleValue {
    const value = this.top();
    this.stack.pop();
    return value;
  }

  private popMany(count: number): PickleValue[] {
    const floor = this.marks.at(-1) ?? 0;
    if (this.stack.length - count < floor) throw this.formatError('stack underflow');
    return this.stack.splice(this.stack.length - count, count);
  }

  private popToMark(): PickleValue[] {
    const mark = this.marks.pop();
    if (mark === undefined) throw this.formatError('no MARK to pop to');
    return this.stack.splice(mark);
  }

  private byte(): number {
    return this.bytes[this.take(1)]!;
  }

  private uint32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  private uint64(): number {
    const value = this.view.getBigUint64(this.take(8), true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw this.formatError('a length larger than the file');
    return Number(value);
  }

  /** Advances by `count` bytes and returns where they start. */
  private take(count: number): number {
    const start = this.position;
    if (count > this.bytes.length - start) throw new PickleTruncatedError(`the pickle ends before its STOP opcode (at byte ${this.bytes.length})`);
    this.position += count;
    return start;
  }

  private utf8(length: number): string {
    const start = this.take(length);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes.subarray(start, start + length));
    } catch {
      throw this.formatError('a string that is not valid UTF-8');
    }
  }

  private line(): string {
    const start = this.position;
    const limit = Math.min(this.bytes.length, start + MAX_GLOBAL_NAME_BYTES);
    for (let i = start; i < limit; i++) {
      if (this.bytes[i] === 0x0a) {
        this.position = i + 1;
        return new TextDecoder('latin1').decode(this.bytes.subarray(start, i));
      }
    }
    if (limit === this.bytes.length) throw new PickleTruncatedError('the pickle ends inside a GLOBAL name');
    throw this.formatError(`a GLOBAL name longer than ${MAX_GLOBAL_NAME_BYTES} bytes`);
  }

  /** Two's-complement little-endian integer (LONG1/LONG4); a number when exact, else a bigint. */
  private littleEndianInteger(length: number): number | bigint {
    if (length > MAX_LONG_BYTES) throw this.refused(`an integer of ${length} bytes is not allowed (torch never writes one over ${MAX_LONG_BYTES})`);
    const start = this.take(length);
    if (length === 0) return 0;
    let value = 0n;
    for (let i = length - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.bytes[start + i]!);
    if (this.bytes[start + length - 1]! & 0x80) value -= 1n << BigInt(8 * length);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  private refused(problem: string): PickleRefusedError {
    return new PickleRefusedError(`${problem} (at byte ${this.opcodeStart} of the pickle)`);
  }

  private formatError(problem: string): PickleFormatError {
    return new PickleFormatError(`malformed pickle at byte ${this.opcodeStart}: ${problem}`);
  }
}

function isDictKey(value: PickleValue): value is PickleDictKey {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean';
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
