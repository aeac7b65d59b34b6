/**
 * BERT's `BasicTokenizer` (transformers v4.36.2): text cleanup, spaces around CJK ideographs, NFC,
 * whitespace split, lower-casing, optional accent stripping and punctuation splitting. BERT uses it as
 * its first stage; CLIP's slow tokenizer uses it (no accent stripping, no punctuation split) as its text
 * cleanup when ftfy is not installed, which is how the reference kit was made.
 */
import { isCjkIdeograph, isTokenizerControl, isTokenizerPunctuation, isTokenizerWhitespace, pythonSplit, stripAccents } from './unicode-text';

export interface BasicTokenizerOptions {
  lowerCase: boolean;
  /** Only applied together with lower-casing, as in the reference (`strip_accents=None` follows `do_lower_case`). */
  stripAccents: boolean;
  splitOnPunctuation: boolean;
  /** Whole words left exactly as they are (the reference passes the special tokens). */
  neverSplit?: ReadonlySet<string>;
}

export function basicTokenize(text: string, options: BasicTokenizerOptions): string[] {
  const neverSplit = options.neverSplit ?? new Set<string>();
  const cleaned = spaceOutCjk(cleanText(text)).normalize('NFC');
  const pieces: string[] = [];
  for (const word of pythonSplit(cleaned)) {
    if (neverSplit.has(word)) {
      pieces.push(word);
      continue;
    }
    let token = word;
    if (options.lowerCase) {
      token = token.toLowerCase();
      if (options.stripAccents) token = stripAccents(token);
    }
    pieces.push(...(options.splitOnPunctuation ? splitOnPunctuation(token) : [token]));
  }
  // Accent stripping can leave an empty word behind; the reference re-splits to drop it.
  return pythonSplit(pieces.join(' '));
}

/** `_clean_text`: drops NUL, U+FFFD and control characters; every whitespace character becomes a space. */
function cleanText(text: string): string {
  let output = '';
  for (const char of text) {
    const cp = char.codePointAt(0) ?? 0;
    if (cp === 0 || cp === 0xfffd || isTokenizerControl(char)) continue;
    output += isTokenizerWhitespace(char) ? ' ' : char;
  }
  return output;
}

/** `_tokenize_chinese_chars`: each CJK ideograph becomes a word of its own. */
function spaceOutCjk(text: string): string {
  let output = '';
  for (const char of text) output += isCjkIdeograph(char.codePointAt(0) ?? 0) ? ` ${char} ` : char;
  return output;
}

/** `_run_split_on_punc`: every punctuation character is a word of its own. */
function splitOnPunctuation(token: string): string[] {
  const words: string[] = [];
  let current = '';
  for (const char of token) {
    if (isTokenizerPunctuation(char)) {
      if (current) words.push(current);
      words.push(char);
      current = '';
    } else {
      current += char;
    }
  }
  if (current) words.push(current);
  return words;
}
