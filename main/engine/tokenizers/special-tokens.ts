/**
 * The slow tokenizers' added-token split (`tokens_trie.split` in transformers v4.36.2): special tokens
 * written in the text, exactly and case-sensitively, become their own token before any normalisation.
 * None of the special tokens used here strips the spaces around it (lstrip/rstrip are false).
 */

export interface TextPiece {
  text: string;
  special: boolean;
}

/** Splits at the leftmost match, preferring the longest special token there; drops empty pieces. */
export function splitOnSpecialTokens(text: string, specialTokens: readonly string[]): TextPiece[] {
  const candidates = [...new Set(specialTokens)].filter((token) => token.length > 0).sort((a, b) => b.length - a.length);
  const pieces: TextPiece[] = [];
  let plainStart = 0;
  let position = 0;
  while (position < text.length) {
    const match = candidates.find((token) => text.startsWith(token, position));
    if (match === undefined) {
      position += 1;
      continue;
    }
    if (position > plainStart) pieces.push({ text: text.slice(plainStart, position), special: false });
    pieces.push({ text: match, special: true });
    position += match.length;
    plainStart = position;
  }
  if (text.length > plainStart) pieces.push({ text: text.slice(plainStart), special: false });
  return pieces;
}
