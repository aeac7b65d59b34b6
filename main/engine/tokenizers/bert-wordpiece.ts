/**
 * BERT's uncased WordPiece tokenizer, matching transformers v4.36.2's slow `BertTokenizer` as the
 * Q-Former uses it: `[CLS] text [SEP]`, no padding, no truncation, with `[DEC]` added as the bos token
 * (it gets id = vocabulary size; the reference adds it but does not put it in the sequence).
 */
import { basicTokenize } from './basic-tokenizer';
import { splitOnSpecialTokens } from './special-tokens';

export const BERT_DEC_TOKEN = '[DEC]';
const CLS_TOKEN = '[CLS]';
const SEP_TOKEN = '[SEP]';
const PAD_TOKEN = '[PAD]';
const UNK_TOKEN = '[UNK]';
const MASK_TOKEN = '[MASK]';
/** Longer words become a single [UNK] (`max_input_chars_per_word`). */
const MAX_INPUT_CHARS_PER_WORD = 100;
const CONTINUATION_PREFIX = '##';

export interface BertTokenizerOptions {
  /** Add `[DEC]` as the bos token, as BLIP's Q-Former does (default true). */
  addDecBos?: boolean;
}

export interface BertEncodeOptions {
  /** Refuse (with a clear error) a sequence longer than this, e.g. the Q-Former's position table. */
  maxLength?: number;
}

export interface BertEncoding {
  inputIds: number[];
  attentionMask: number[];
}

export class BertTokenizer {
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly unkId: number;
  /** The `[DEC]` id when it was added, else undefined. */
  readonly decId: number | undefined;
  readonly #vocab: ReadonlyMap<string, number>;
  readonly #specialTokens: readonly string[];

  private constructor(vocab: ReadonlyMap<string, number>, addDecBos: boolean) {
    this.#vocab = vocab;
    this.clsId = requireTokenId(vocab, CLS_TOKEN);
    this.sepId = requireTokenId(vocab, SEP_TOKEN);
    this.padId = requireTokenId(vocab, PAD_TOKEN);
    this.unkId = requireTokenId(vocab, UNK_TOKEN);
    requireTokenId(vocab, MASK_TOKEN);
    // An added token takes the next id after the vocabulary, unless the vocabulary already has it.
    this.decId = addDecBos ? (vocab.get(BERT_DEC_TOKEN) ?? vocab.size) : undefined;
    const special = [PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN];
    this.#specialTokens = addDecBos ? [...special, BERT_DEC_TOKEN] : special;
  }

  /** `vocab.txt`: one token per line, the line number (from 0) is its id. */
  static fromVocab(vocabTxt: string, options: BertTokenizerOptions = {}): BertTokenizer {
    return new BertTokenizer(parseVocabTxt(vocabTxt), options.addDecBos ?? true);
  }

  /** Distinct tokens in vocab.txt, without `[DEC]`. */
  get vocabSize(): number {
    return this.#vocab.size;
  }

  /** WordPiece tokens of a text, without `[CLS]`/`[SEP]`. */
  tokenize(text: string): string[] {
    const neverSplit = new Set(this.#specialTokens);
    const tokens: string[] = [];
    for (const piece of splitOnSpecialTokens(text, this.#specialTokens)) {
      if (piece.special) {
        tokens.push(piece.text);
        continue;
      }
      for (const word of basicTokenize(piece.text, { lowerCase: true, stripAccents: true, splitOnPunctuation: true, neverSplit })) {
        tokens.push(...this.#wordPiece(word));
      }
    }
    return tokens;
  }

  /** `[CLS] tokens [SEP]` and an all-ones attention mask (a single text is never padded). */
  encode(text: string, options: BertEncodeOptions = {}): BertEncoding {
    const inputIds = [this.clsId, ...this.tokenize(text).map((token) => this.#tokenId(token)), this.sepId];
    if (options.maxLength !== undefined && inputIds.length > options.maxLength) {
      throw new RangeError(
        `The text ${JSON.stringify(text)} is ${inputIds.length} tokens long with [CLS] and [SEP]; at most ${options.maxLength} fit. Shorten it.`,
      );
    }
    return { inputIds, attentionMask: inputIds.map(() => 1) };
  }

  #tokenId(token: string): number {
    if (token === BERT_DEC_TOKEN && this.decId !== undefined) return this.decId;
    return this.#vocab.get(token) ?? this.unkId;
  }

  /** Greedy longest-match-first; a word with any piece missing from the vocabulary becomes one [UNK]. */
  #wordPiece(word: string): string[] {
    const chars = [...word];
    if (chars.length > MAX_INPUT_CHARS_PER_WORD) return [UNK_TOKEN];
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | undefined;
      while (start < end) {
        const candidate = (start > 0 ? CONTINUATION_PREFIX : '') + chars.slice(start, end).join('');
        if (this.#vocab.has(candidate)) {
          found = candidate;
          break;
        }
        end -= 1;
      }
      if (found === undefined) return [UNK_TOKEN];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }
}

function requireTokenId(vocab: ReadonlyMap<string, number>, token: string): number {
  const id = vocab.get(token);
  if (id === undefined) throw new Error(`The BERT vocab.txt has no ${token} token: is it a BERT WordPiece vocabulary?`);
  return id;
}

/**
 * Python's text-mode `readlines()` with the newline stripped: `\r\n` and `\r` count as `\n`, a final
 * newline adds no empty token. A token listed twice keeps its later line number, as the reference's dict does.
 */
function parseVocabTxt(vocabTxt: string): Map<string, number> {
  const lines = vocabTxt.replace(/\r\n?/g, '\n').split('\n');
  if (lines.at(-1) === '') lines.pop();
  const vocab = new Map<string, number>();
  lines.forEach((token, index) => vocab.set(token, index));
  return vocab;
}
