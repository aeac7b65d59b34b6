/**
 * Byte-level BPE helpers: UTF-8 encoding (the pure layers have no TextEncoder) and the reference's
 * `bytes_to_unicode` table, which gives each byte a printable stand-in character so that BPE symbols
 * never contain spaces or control characters.
 */

/** UTF-8 bytes of a string; a lone surrogate (never produced by the cleanup) is encoded as U+FFFD. */
export function utf8Bytes(text: string): number[] {
  const bytes: number[] = [];
  for (const char of text) {
    let cp = char.codePointAt(0) ?? 0;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) {
      bytes.push(cp);
    } else if (cp < 0x800) {
      bytes.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      bytes.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    } else {
      bytes.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    }
  }
  return bytes;
}

/**
 * `bytes_to_unicode()` as an array indexed by byte. Printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
 * themselves; the other 68 bytes, in increasing order, get U+0100, U+0101, ...
 */
export const BYTE_TO_UNICODE: readonly string[] = buildByteTable();

function isPrintableByte(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

function buildByteTable(): string[] {
  const table: string[] = [];
  let next = 0;
  for (let byte = 0; byte < 256; byte++) {
    table.push(String.fromCodePoint(isPrintableByte(byte) ? byte : 256 + next++));
  }
  return table;
}
