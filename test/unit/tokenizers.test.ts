import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { buildBlipPrompt, NegativePromptTooLongError, tokenizeBlipPrompts } from '../../main/engine/pipelines/blip-prompt';
import { findResourcesDir, loadQformerTokenizer, locateQformerVocab, QformerVocabMissingError } from '../../main/engine/pipelines/qformer-vocab';
import { BertTokenizer } from '../../main/engine/tokenizers/bert-wordpiece';
import { ClipTokenizer } from '../../main/engine/tokenizers/clip-bpe';
import { makeTempDir } from '../helpers/temp-dir';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
const kit = join(repo, 'test/fixtures/parity');
const kitModel = join(kit, 'models/tiny-blipdiffusion');
const bundledVocab = join(repo, 'resources/bert-base-uncased/vocab.txt');

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

function kitIds(name: string): number[] {
  const array = readNpyFile(join(kit, 'blip', `${name}.npy`));
  expect(array.dtype).toBe('int64');
  return Array.from(array.data as BigInt64Array, Number);
}

function numberField(config: Record<string, unknown>, key: string): number {
  const value = config[key];
  if (typeof value !== 'number') throw new Error(`${key} is not a number`);
  return value;
}

let clip: ClipTokenizer;
let tinyBert: BertTokenizer;

beforeAll(() => {
  clip = ClipTokenizer.fromFiles({
    vocabJson: readFileSync(join(kitModel, 'tokenizer/vocab.json'), 'utf8'),
    mergesTxt: readFileSync(join(kitModel, 'tokenizer/merges.txt'), 'utf8'),
  });
  tinyBert = BertTokenizer.fromVocab(readFileSync(join(kit, 'models/bert-tiny-uncased/vocab.txt'), 'utf8'));
});

describe('BLIP-Diffusion prompts against the reference kit', () => {
  const textEncoderConfig = () => readJson(join(kitModel, 'text_encoder/config.json'));
  const qformerConfig = () => readJson(join(kitModel, 'qformer/config.json'));

  it('builds the repeated prompt of the kit run', () => {
    const phrase = 'a puppy swimming underwater';
    expect(buildBlipPrompt({ prompt: 'swimming underwater', targetSubject: 'puppy' })).toBe(Array(20).fill(phrase).join(', '));
  });

  it('matches cond_input_ids and uncond_input_ids exactly, with lengths from the configs', () => {
    const maxPositionEmbeddings = numberField(textEncoderConfig(), 'max_position_embeddings');
    const queryTokenCount = numberField(qformerConfig(), 'num_query_tokens');
    const { condIds, uncondIds } = tokenizeBlipPrompts(clip, {
      prompt: 'swimming underwater',
      targetSubject: 'puppy',
      promptStrength: 1.0,
      promptReps: 20,
      negativePrompt: '',
      maxPositionEmbeddings,
      queryTokenCount,
    });
    expect(condIds).toEqual(kitIds('cond_input_ids'));
    expect(uncondIds).toEqual(kitIds('uncond_input_ids'));
    expect(condIds).toHaveLength(maxPositionEmbeddings - queryTokenCount);
  });

  it('matches qformer_input_ids and qformer_attention_mask exactly', () => {
    const { inputIds, attentionMask } = tinyBert.encode('dog');
    expect(inputIds).toEqual(kitIds('qformer_input_ids'));
    expect(attentionMask).toEqual(kitIds('qformer_attention_mask'));
  });

  it('has the special-token ids the configs declare', () => {
    expect(clip.bosId).toBe(numberField(textEncoderConfig(), 'bos_token_id'));
    expect(clip.eosId).toBe(numberField(textEncoderConfig(), 'eos_token_id'));
    expect(clip.padId).toBe(numberField(textEncoderConfig(), 'pad_token_id'));
    expect(clip.vocabSize).toBe(numberField(textEncoderConfig(), 'vocab_size'));
    const qformerVocabSize = (qformerConfig().qformer_config as Record<string, unknown>).vocab_size;
    expect(tinyBert.decId).toBe(tinyBert.vocabSize);
    expect((tinyBert.decId ?? 0) + 1).toBe(qformerVocabSize);
  });
});

describe('buildBlipPrompt', () => {
  it('repeats int(strength x reps) times, truncating toward zero', () => {
    const count = (text: string) => (text === '' ? 0 : text.split(', ').length);
    expect(count(buildBlipPrompt({ prompt: 'x', targetSubject: 'dog', promptStrength: 0.5 }))).toBe(10);
    // 0.7 * 20 = 14.000000000000002 in doubles; Python's int() gives 14.
    expect(count(buildBlipPrompt({ prompt: 'x', targetSubject: 'dog', promptStrength: 0.7 }))).toBe(14);
    expect(count(buildBlipPrompt({ prompt: 'x', targetSubject: 'dog', promptStrength: 1, promptReps: 3 }))).toBe(3);
    expect(buildBlipPrompt({ prompt: 'x', targetSubject: 'dog', promptStrength: 0 })).toBe('');
    expect(buildBlipPrompt({ prompt: 'x', targetSubject: 'dog', promptStrength: -1 })).toBe('');
  });

  it('strips the prompt (Python whitespace) but not the subject', () => {
    expect(buildBlipPrompt({ prompt: ' \t swimming \n', targetSubject: 'puppy', promptReps: 1 })).toBe('a puppy swimming');
    expect(buildBlipPrompt({ prompt: '\x1cswimming\x85', targetSubject: ' puppy', promptReps: 1 })).toBe('a  puppy swimming');
    expect(buildBlipPrompt({ prompt: '', targetSubject: 'puppy', promptReps: 2 })).toBe('a puppy , a puppy ');
  });

  it('refuses a non-finite repetition count', () => {
    expect(() => buildBlipPrompt({ prompt: 'x', targetSubject: 'dog', promptStrength: Number.NaN })).toThrow(RangeError);
  });
});

describe('tokenizeBlipPrompts', () => {
  const sizes = { maxPositionEmbeddings: 77, queryTokenCount: 16 };

  it('an empty prompt still gives [BOS, "a", target ...] cut and padded to 61', () => {
    const { condIds } = tokenizeBlipPrompts(clip, { prompt: '', targetSubject: 'dog', promptReps: 1, ...sizes });
    // "a dog " -> a</w> 320, dog</w> 589.
    expect(condIds).toEqual([667, 320, 589, 668, ...Array(57).fill(668)]);
  });

  it('pads a negative prompt to 77 and never cuts it', () => {
    const { uncondIds } = tokenizeBlipPrompts(clip, { prompt: 'x', targetSubject: 'dog', negativePrompt: 'a dog', ...sizes });
    expect(uncondIds).toEqual([667, 320, 589, 668, ...Array(73).fill(668)]);
    const fits = tokenizeBlipPrompts(clip, { prompt: 'x', targetSubject: 'dog', negativePrompt: 'a '.repeat(75), ...sizes });
    expect(fits.uncondIds).toEqual([667, ...Array(75).fill(320), 668]);
  });

  it('refuses a negative prompt longer than 77 tokens with a clear error', () => {
    const tooLong = () => tokenizeBlipPrompts(clip, { prompt: 'x', targetSubject: 'dog', negativePrompt: 'a '.repeat(76), ...sizes });
    expect(tooLong).toThrow(NegativePromptTooLongError);
    expect(tooLong).toThrow(/has 76 tokens, and at most 75 fit \(77 with the start and end tokens\)\. Shorten the negative prompt/);
  });

  it('refuses query-token counts that leave no room for the prompt', () => {
    expect(() => tokenizeBlipPrompts(clip, { prompt: 'x', targetSubject: 'dog', maxPositionEmbeddings: 17, queryTokenCount: 16 })).toThrow(RangeError);
  });
});

describe('ClipTokenizer (ids derived by hand from the tiny vocab and merges)', () => {
  // Byte-level ids: printable ASCII c is ord(c) - 33, with </w> ord(c) + 223.
  const encode = (text: string) => clip.encode(text);

  it('lower-cases, and merges by rank ("d o" then "do g</w>")', () => {
    expect(encode('A DOG')).toEqual([667, 320, 589, 668]);
    expect(clip.tokenize('Dog')).toEqual(['dog</w>']);
  });

  it('gives every digit its own token', () => {
    expect(encode('1234')).toEqual([667, 272, 273, 274, 275, 668]);
  });

  it('keeps punctuation runs together, apart from letters', () => {
    expect(encode('dog, cat!')).toEqual([667, 589, 267, 579, 256, 668]);
    expect(encode('dog,cat')).toEqual([667, 589, 267, 579, 668]);
    // "?!" is one word: "?" 30, "!</w>" 256.
    expect(encode('?!')).toEqual([667, 30, 256, 668]);
  });

  it("splits contractions off ('s)", () => {
    // "'" 6, "s</w>" 338.
    expect(encode("dog's")).toEqual([667, 589, 6, 338, 668]);
  });

  it('collapses repeated whitespace, tabs and newlines', () => {
    expect(encode('  a \t\n dog\r\n\u3000 ')).toEqual([667, 320, 589, 668]);
    expect(encode('a\u00a0dog')).toEqual([667, 320, 589, 668]);
  });

  it('drops control and format characters', () => {
    expect(encode('do\u200bg\u0000')).toEqual([667, 589, 668]);
  });

  it('byte-encodes accents (kept, NFC-composed) as UTF-8', () => {
    // café: c 66, a 64, f 69, byte 0xC3 127, byte 0xA9 + </w> 358.
    expect(encode('café')).toEqual([667, 66, 64, 69, 127, 358, 668]);
    expect(encode('cafe\u0301')).toEqual([667, 66, 64, 69, 127, 358, 668]);
    expect(encode('CAFÉ')).toEqual([667, 66, 64, 69, 127, 358, 668]);
  });

  it('gives each CJK ideograph its own word', () => {
    // 狗 = E7 8B 97: 163, 233, 245 + 256.
    expect(encode('狗')).toEqual([667, 163, 233, 501, 668]);
    expect(encode('狗狗')).toEqual([667, 163, 233, 501, 163, 233, 501, 668]);
  });

  it('byte-encodes emoji', () => {
    // 🐶 = F0 9F 90 B6: 172, 253, 238, 114 + 256.
    expect(encode('🐶')).toEqual([667, 172, 253, 238, 370, 668]);
  });

  it('encodes the empty string as start and end only', () => {
    expect(encode('')).toEqual([667, 668]);
    expect(encode(' \n ')).toEqual([667, 668]);
  });

  it('treats special tokens written in the text as themselves', () => {
    expect(encode('a<|endoftext|>dog')).toEqual([667, 320, 668, 589, 668]);
    // Not an exact match, but the cleanup lower-cases it into one (the reference's pattern lists them).
    expect(encode('a <|ENDOFTEXT|>')).toEqual([667, 320, 668, 668]);
  });

  it('pads and truncates only when asked', () => {
    expect(clip.encode('a dog', { maxLength: 6, padding: 'max_length' })).toEqual([667, 320, 589, 668, 668, 668]);
    expect(clip.encode('a dog', { maxLength: 3, truncation: true })).toEqual([667, 320, 668]);
    expect(clip.encode('a dog', { maxLength: 3, padding: 'max_length' })).toEqual([667, 320, 589, 668]);
    expect(clip.encode('a dog', { maxLength: 2, truncation: true, padding: 'max_length' })).toEqual([667, 668]);
    expect(() => clip.encode('a dog', { truncation: true })).toThrow(RangeError);
    expect(() => clip.encode('a dog', { maxLength: 1, truncation: true })).toThrow(RangeError);
  });

  it('skips the merges.txt header, accepts a parsed vocab.json and CRLF merges', () => {
    const vocab = { h: 0, e: 1, 'e</w>': 2, 'he</w>': 3, '<|startoftext|>': 4, '<|endoftext|>': 5 };
    const merged = ClipTokenizer.fromFiles({ vocabJson: vocab, mergesTxt: '#version: 0.2\r\nh e</w>\r\n' });
    expect(merged.encode('he')).toEqual([4, 3, 5]);
    const headerless = ClipTokenizer.fromFiles({ vocabJson: vocab, mergesTxt: 'h e</w>\n' });
    expect(headerless.encode('he')).toEqual([4, 0, 2, 5]);
    expect(() => ClipTokenizer.fromFiles({ vocabJson: { a: 0 }, mergesTxt: '' })).toThrow(/<\|startoftext\|>/);
  });
});

describe('BertTokenizer, tiny vocab (ids are line numbers of its vocab.txt)', () => {
  const ids = (text: string) => tinyBert.encode(text).inputIds;

  it('wraps in [CLS] ... [SEP] with an all-ones mask', () => {
    expect(tinyBert.encode('dog cat')).toEqual({ inputIds: [5, 102, 103, 6], attentionMask: [1, 1, 1, 1] });
    expect(tinyBert.encode('')).toEqual({ inputIds: [5, 6], attentionMask: [1, 1] });
  });

  it('lower-cases and strips accents', () => {
    expect(ids('DOG')).toEqual([5, 102, 6]);
    // cafe -> c 52, ##a 76, ##f 81, ##e 80.
    expect(ids('CAFÉ')).toEqual([5, 52, 76, 81, 80, 6]);
    expect(ids('cafe\u0301')).toEqual([5, 52, 76, 81, 80, 6]);
  });

  it('splits punctuation into words', () => {
    expect(ids('dog,cat!')).toEqual([5, 102, 19, 103, 8, 6]);
    expect(ids('toy-car')).toEqual([5, 107, 20, 108, 6]);
    expect(ids("dog's")).toEqual([5, 102, 14, 68, 6]);
  });

  it('uses ## continuation pieces, longest first', () => {
    expect(ids('backpack')).toEqual([5, 105, 111, 6]);
    expect(ids('teddy')).toEqual([5, 69, 112, 114, 6]);
  });

  it('turns a word with any unknown piece into one [UNK]', () => {
    expect(ids('dogß')).toEqual([5, 4, 6]);
    // "1" is known, "##2" is not.
    expect(ids('1234')).toEqual([5, 4, 6]);
    expect(ids('🐶')).toEqual([5, 4, 6]);
  });

  it('gives each CJK ideograph its own word', () => {
    expect(ids('dog 狗狗')).toEqual([5, 102, 4, 4, 6]);
  });

  it('turns words longer than 100 characters into [UNK]', () => {
    expect(ids('a'.repeat(100))).toEqual([5, 50, ...Array(99).fill(76), 6]);
    expect(ids('a'.repeat(101))).toEqual([5, 4, 6]);
  });

  it('collapses whitespace and drops control characters', () => {
    expect(ids('  dog \t\n cat\u3000 ')).toEqual([5, 102, 103, 6]);
    expect(ids('do\u200bg\u0000')).toEqual([5, 102, 6]);
  });

  it('keeps special tokens written exactly, [DEC] included', () => {
    expect(ids('dog[SEP]cat')).toEqual([5, 102, 6, 103, 6]);
    expect(ids('[DEC]')).toEqual([5, 115, 6]);
    // Not exact: an ordinary bracketed word ("[" 30, s 68, ##e 80, ##p 91, "]" 32).
    expect(ids('[sep]')).toEqual([5, 30, 68, 80, 91, 32, 6]);
  });

  it('adds [DEC] only when asked', () => {
    const withoutDec = BertTokenizer.fromVocab(readFileSync(join(kit, 'models/bert-tiny-uncased/vocab.txt'), 'utf8'), { addDecBos: false });
    expect(withoutDec.decId).toBeUndefined();
    expect(withoutDec.encode('[DEC]').inputIds).toEqual([5, 30, 53, 80, 78, 32, 6]);
  });

  it('refuses a sequence longer than maxLength with a clear error', () => {
    expect(() => tinyBert.encode('dog cat dog', { maxLength: 4 })).toThrow(/5 tokens long .*at most 4 fit/);
    expect(tinyBert.encode('dog cat', { maxLength: 4 }).inputIds).toHaveLength(4);
  });

  it('reads vocab.txt like Python: CRLF lines, no token from the final newline', () => {
    const bert = BertTokenizer.fromVocab('[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhi\r\n');
    expect(bert.vocabSize).toBe(6);
    expect(bert.decId).toBe(6);
    expect(bert.encode('Hi').inputIds).toEqual([2, 5, 3]);
    expect(() => BertTokenizer.fromVocab('hello\nworld\n')).toThrow(/no \[CLS\] token/);
  });
});

describe('BertTokenizer, shipped bert-base-uncased vocab', () => {
  let bert: BertTokenizer;
  beforeAll(() => {
    bert = BertTokenizer.fromVocab(readFileSync(bundledVocab, 'utf8'));
  });

  it('is the genuine 30522-token vocabulary with [DEC] = 30522', () => {
    expect(bert.vocabSize).toBe(30522);
    expect(bert.decId).toBe(30522);
    expect([bert.padId, bert.unkId, bert.clsId, bert.sepId]).toEqual([0, 100, 101, 102]);
  });

  it('tokenises with the known ids', () => {
    expect(bert.encode('Hello, World!').inputIds).toEqual([101, 7592, 1010, 2088, 999, 102]);
  });
});

describe('Q-Former vocabulary lookup', () => {
  let temp: ReturnType<typeof makeTempDir>;
  beforeEach(() => {
    temp = makeTempDir('blip-qformer-vocab-');
  });
  afterEach(() => temp.remove());

  it('finds the folder the kit config names next to the model folder, and checks vocab_size', () => {
    const { tokenizer, location } = loadQformerTokenizer({ modelDir: kitModel });
    expect(location).toEqual({ path: join(kit, 'models/bert-tiny-uncased/vocab.txt'), origin: 'model' });
    expect(tokenizer.encode('dog').inputIds).toEqual(kitIds('qformer_input_ids'));
  });

  it('uses the shipped bert-base-uncased when the config names no tokenizer', () => {
    const modelDir = join(temp.path, 'blipdiffusion');
    const { tokenizer, location } = loadQformerTokenizer({ modelDir, qformerConfig: { qformer_config: { vocab_size: 30523 } } });
    expect(location).toEqual({ path: bundledVocab, origin: 'bundled' });
    expect(tokenizer.decId).toBe(30522);
    expect(locateQformerVocab({ modelDir, qformerConfig: { tokenizer: 'bert-base-uncased' } })).toEqual({ path: bundledVocab, origin: 'bundled' });
  });

  it('also accepts the named folder inside the model folder', () => {
    const modelDir = join(temp.path, 'model');
    mkdirSync(join(modelDir, 'my-bert'), { recursive: true });
    writeFileSync(join(modelDir, 'my-bert/vocab.txt'), '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n');
    expect(locateQformerVocab({ modelDir, qformerConfig: { tokenizer: 'my-bert' } })).toEqual({ path: join(modelDir, 'my-bert/vocab.txt'), origin: 'model' });
  });

  it('says what is missing and where it goes', () => {
    const modelDir = join(temp.path, 'model');
    const named = () => locateQformerVocab({ modelDir, qformerConfig: { tokenizer: 'my-bert' } });
    expect(named).toThrow(QformerVocabMissingError);
    expect(named).toThrow(`Put that tokenizer's BERT WordPiece vocab.txt at ${join(temp.path, 'my-bert/vocab.txt')}`);
    const bundled = () => locateQformerVocab({ modelDir, qformerConfig: {}, resourcesDir: join(temp.path, 'resources') });
    expect(bundled).toThrow(QformerVocabMissingError);
    expect(bundled).toThrow(`put bert-base-uncased's vocab.txt at ${join(temp.path, 'resources/bert-base-uncased/vocab.txt')}`);
  });

  it('refuses a vocabulary that does not fit the Q-Former embedding table', () => {
    expect(() => loadQformerTokenizer({ modelDir: kitModel, qformerConfig: { tokenizer: 'bert-tiny-uncased', qformer_config: { vocab_size: 30523 } } })).toThrow(
      /has 115 tokens \(116 with the added \[DEC\]\), but the Q-Former's vocab_size is 30523/,
    );
  });

  it('finds resources/ beside the nearest package.json', () => {
    expect(findResourcesDir()).toBe(join(repo, 'resources'));
    const exists = (path: string) => path === join('/app.asar', 'package.json');
    expect(findResourcesDir('file:///app.asar/out/main/electron.js', exists)).toBe(join('/app.asar', 'resources'));
    expect(() => findResourcesDir('file:///nowhere/x.js', () => false)).toThrow(/resources folder was not found/);
  });
});
