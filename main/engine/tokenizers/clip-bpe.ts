/**
 * CLIP's byte-level BPE tokenizer, matching transformers v4.36.2's slow `CLIPTokenizer` as the reference
 * kit ran it (ftfy not installed, so the text cleanup is BERT's BasicTokenizer without accent stripping
 * or punctuation splitting), and its `__call__` padding/truncation for a single text.
 */
import { basicTokenize } from './basic-tokenizer';
import { BYTE_TO_UNICODE, utf8Bytes } from './byte-level';
import { splitOnSpecialTokens } from './special-tokens';
import { pythonSplit, pythonStrip } from './unicode-text';

export const CLIP_BOS_TOKEN = '<|startoftext|>';
export const CLIP_EOS_TOKEN = '<|endoftext|>';

/** The reference reads at most this many merges after merges.txt's header line (`49152 - 256 - 2`). */
const MAX_MERGES = 49152 - 256 - 2;
const END_OF_WORD = '</w>';
/** Bounds the word cache of a long-running app; clearing it changes no result. */
const MAX_CACHED_WORDS = 50_000;
/** The reference's pre-tokenizer pattern (compiled with IGNORECASE). */
const WORD_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;

export interface ClipTokenizerFiles {
  /** `vocab.json`: its text, or the already parsed object (token -> id). */
  vocabJson: string | Readonly<Record<string, unknown>>;
  /** `merges.txt`: its text. Line 1 is a `#version` header and is always skipped, as the reference does. */
  mergesTxt: string;
}

export interface ClipEncodeOptions {
  /** Total length including `<|startoftext|>` and `<|endoftext|>`; needed for padding or truncation. */
  maxLength?: number;
  /** 'max_length' pads with the pad id (`<|endoftext|>`) up to maxLength; 'none' (the default) never pads. */
  padding?: 'max_length' | 'none';
  /** Cut the text's tokens so that the whole sequence fits maxLength (default false: never cut). */
  truncation?: boolean;
}

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  /** The reference pads with `<|endoftext|>`. */
  readonly padId: number;
  /** Unknown tokens also become `<|endoftext|>`. */
  readonly unkId: number;
  readonly #vocab: ReadonlyMap<string, number>;
  readonly #mergeRanks: ReadonlyMap<string, number>;
  readonly #cache = new Map<string, readonly string[]>();

  private constructor(vocab: ReadonlyMap<string, number>, mergeRanks: ReadonlyMap<string, number>) {
    this.#vocab = vocab;
    this.#mergeRanks = mergeRanks;
    this.bosId = requireTokenId(vocab, CLIP_BOS_TOKEN);
    this.eosId = requireTokenId(vocab, CLIP_EOS_TOKEN);
    this.padId = this.eosId;
    this.unkId = this.eosId;
  }

  static fromFiles(files: ClipTokenizerFiles): ClipTokenizer {
    return new ClipTokenizer(parseVocabJson(files.vocabJson), parseMerges(files.mergesTxt));
  }

  get vocabSize(): number {
    return this.#vocab.size;
  }

  /** The BPE tokens of a text, without the start and end tokens. */
  tokenize(text: string): string[] {
    const tokens: string[] = [];
    for (const piece of splitOnSpecialTokens(text, [CLIP_BOS_TOKEN, CLIP_EOS_TOKEN])) {
      if (piece.special) tokens.push(piece.text);
      else tokens.push(...this.#tokenizePlainText(piece.text));
    }
    return tokens;
  }

  /** Token ids with `<|startoftext|>` first and `<|endoftext|>` last, truncated and padded as asked. */
  encode(text: string, options: ClipEncodeOptions = {}): number[] {
    const { maxLength, padding = 'none', truncation = false } = options;
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 0)) {
      throw new RangeError(`maxLength must be a non-negative integer, got ${maxLength}`);
    }
    if (maxLength === undefined && (padding === 'max_length' || truncation)) {
      throw new RangeError('padding to max_length and truncation need a maxLength');
    }
    let content = this.tokenize(text).map((token) => this.#vocab.get(token) ?? this.unkId);
    if (truncation && maxLength !== undefined) {
      if (maxLength < 2) throw new RangeError(`maxLength ${maxLength} leaves no room for the start and end tokens`);
      content = content.slice(0, maxLength - 2);
    }
    const ids = [this.bosId, ...content, this.eosId];
    if (padding === 'max_length' && maxLength !== undefined) {
      while (ids.length < maxLength) ids.push(this.padId);
    }
    return ids;
  }

  /** `_tokenize`: cleanup, the word pattern, then byte-level BPE of each word. */
  #tokenizePlainText(text: string): string[] {
    const cleaned = basicTokenize(text, { lowerCase: true, stripAccents: false, splitOnPunctuation: false }).join(' ');
    const tokens: string[] = [];
    for (const [word] of cleaned.matchAll(WORD_PATTERN)) {
      const byteWord = utf8Bytes(word)
        .map((byte) => BYTE_TO_UNICODE[byte] ?? '')
        .join('');
      tokens.push(...this.#bpe(byteWord));
    }
    return tokens;
  }

  /** Repeatedly merges the adjacent pair with the lowest merge rank; the last symbol carries `</w>`. */
  #bpe(word: string): readonly string[] {
    // The reference seeds its BPE cache with the two special tokens, so the pattern's match of one stays whole.
    if (word === CLIP_BOS_TOKEN || word === CLIP_EOS_TOKEN) return [word];
    const cached = this.#cache.get(word);
    if (cached) return cached;
    const chars = [...word];
    let symbols = [...chars.slice(0, -1), `${chars.at(-1) ?? ''}${END_OF_WORD}`];
    while (symbols.length > 1) {
      const best = this.#lowestRankedPair(symbols);
      if (best === undefined) break;
      symbols = mergePair(symbols, best.first, best.second);
    }
    if (this.#cache.size >= MAX_CACHED_WORDS) this.#cache.clear();
    this.#cache.set(word, symbols);
    return symbols;
  }

  #lowestRankedPair(symbols: readonly string[]): { first: string; second: string } | undefined {
    let best: { first: string; second: string } | undefined;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const first = symbols[i] ?? '';
      const second = symbols[i + 1] ?? '';
      const rank = this.#mergeRanks.get(pairKey(first, second));
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = { first, second };
      }
    }
    return best;
  }
}

/** Merges every non-overlapping occurrence of (first, second), left to right. */
function mergePair(symbols: readonly string[], first: string, second: string): string[] {
  const merged: string[] = [];
  let i = 0;
  while (i < symbols.length) {
    if (symbols[i] === first && i + 1 < symbols.length && symbols[i + 1] === second) {
      merged.push(first + second);
      i += 2;
    } else {
      merged.push(symbols[i] ?? '');
      i += 1;
    }
  }
  return merged;
}

function pairKey(first: string, second: string): string {
  // BPE symbols never contain a space (bytes_to_unicode maps it away), so a space separates them safely.
  return `${first} ${second}`;
}

function requireTokenId(vocab: ReadonlyMap<string, number>, token: string): number {
  const id = vocab.get(token);
  if (id === undefined) throw new Error(`CLIP vocab.json has no ${token} token`);
  return id;
}

function parseVocabJson(vocabJson: string | Readonly<Record<string, unknown>>): Map<string, number> {
  let parsed: unknown = vocabJson;
  if (typeof vocabJson === 'string') {
    try {
      parsed = JSON.parse(vocabJson);
    } catch (error) {
      throw new Error(`CLIP vocab.json is not valid JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('CLIP vocab.json must be an object of token -> id');
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(parsed)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new Error(`CLIP vocab.json: token ${JSON.stringify(token)} has an invalid id`);
    vocab.set(token, id);
  }
  return vocab;
}

/** Rank = position after the header; a pair listed twice keeps its later rank, as the reference's dict does. */
function parseMerges(mergesTxt: string): Map<string, number> {
  const lines = pythonStrip(mergesTxt.replace(/\r\n?/g, '\n')).split('\n').slice(1, MAX_MERGES + 1);
  const ranks = new Map<string, number>();
  lines.forEach((line, rank) => {
    const parts = pythonSplit(line);
    if (parts.length === 2) ranks.set(pairKey(parts[0] ?? '', parts[1] ?? ''), rank);
  });
  return ranks;
}
