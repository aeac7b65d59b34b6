/**
 * Character classes and string helpers with the exact meaning the reference tokenizers give them
 * (Python's `str.isspace`/`str.strip`/`str.split` and the `_is_whitespace`/`_is_control`/
 * `_is_punctuation` checks of transformers' slow tokenizers). Unicode property escapes stand in for
 * `unicodedata.category`. Every function works on code points, as Python strings do.
 */

/** Python's `str.isspace()` code points: general category Zs, or bidirectional class WS, B or S. */
const PYTHON_SPACES: ReadonlySet<number> = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

export function isPythonSpace(char: string): boolean {
  return PYTHON_SPACES.has(char.codePointAt(0) ?? -1);
}

/** Python's `text.strip()` (JavaScript's `trim()` differs: it strips U+FEFF and keeps U+001C-U+001F, U+0085). */
export function pythonStrip(text: string): string {
  // Every Python space is a single UTF-16 unit, so indexing by unit is safe here.
  let start = 0;
  let end = text.length;
  while (start < end && isPythonSpace(text.charAt(start))) start++;
  while (end > start && isPythonSpace(text.charAt(end - 1))) end--;
  return text.slice(start, end);
}

/** Python's `text.split()`: split on runs of whitespace, no empty pieces. */
export function pythonSplit(text: string): string[] {
  const pieces: string[] = [];
  let current = '';
  for (const char of text) {
    if (isPythonSpace(char)) {
      if (current) pieces.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  if (current) pieces.push(current);
  return pieces;
}

const SPACE_SEPARATOR = /^\p{Zs}$/u;
const OTHER_CATEGORY = /^\p{C}$/u;
const PUNCTUATION_CATEGORY = /^\p{P}$/u;
const NONSPACING_MARKS = /\p{Mn}/gu;

/** `_is_whitespace`: space, tab, newline, carriage return, or category Zs. */
export function isTokenizerWhitespace(char: string): boolean {
  return char === ' ' || char === '\t' || char === '\n' || char === '\r' || SPACE_SEPARATOR.test(char);
}

/** `_is_control`: any category C* (Cc, Cf, Cs, Co, Cn), except tab, newline and carriage return. */
export function isTokenizerControl(char: string): boolean {
  if (char === '\t' || char === '\n' || char === '\r') return false;
  return OTHER_CATEGORY.test(char);
}

/** `_is_punctuation`: every non-alphanumeric printable ASCII character (so `$`, `^`, `` ` `` too), or category P*. */
export function isTokenizerPunctuation(char: string): boolean {
  const cp = char.codePointAt(0) ?? 0;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return PUNCTUATION_CATEGORY.test(char);
}

/** `_is_chinese_char`: the CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana). */
export function isCjkIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** `_run_strip_accents`: NFD, then drop the nonspacing marks (category Mn). */
export function stripAccents(text: string): string {
  return text.normalize('NFD').replace(NONSPACING_MARKS, '');
}
