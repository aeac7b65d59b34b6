/**
 * A strict JSON parser for untrusted file headers. Unlike JSON.parse it refuses duplicate keys (which
 * JSON.parse silently resolves to the last one, hiding a second tensor with the same name), returns
 * objects as Maps (no prototype to pollute, insertion order kept even for numeric keys) and bounds
 * nesting depth so a header of a million '[' cannot overflow the stack.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

export type JsonObject = ReadonlyMap<string, JsonValue>;

export class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';
}

const MAX_DEPTH = 64;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

export function parseJsonStrict(text: string): JsonValue {
  const parser = new StrictJsonParser(text);
  const value = parser.parseValue(0);
  parser.skipWhitespace();
  if (!parser.atEnd()) throw parser.error('unexpected text after the JSON value');
  return value;
}

class StrictJsonParser {
  private position = 0;

  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.position >= this.text.length;
  }

  error(problem: string): JsonSyntaxError {
    return new JsonSyntaxError(`invalid JSON at character ${this.position}: ${problem}`);
  }

  skipWhitespace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.position);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.position++;
    }
  }

  parseValue(depth: number): JsonValue {
    if (depth > MAX_DEPTH) throw this.error(`nested deeper than ${MAX_DEPTH} levels`);
    this.skipWhitespace();
    const c = this.text[this.position];
    switch (c) {
      case '{':
        return this.parseObject(depth);
      case '[':
        return this.parseArray(depth);
      case '"':
        return this.parseString();
      case 't':
        return this.parseLiteral('true', true);
      case 'f':
        return this.parseLiteral('false', false);
      case 'n':
        return this.parseLiteral('null', null);
      case undefined:
        throw this.error('unexpected end of text');
      default:
        return this.parseNumber();
    }
  }

  private parseObject(depth: number): JsonObject {
    const object = new Map<string, JsonValue>();
    this.position++; // '{'
    this.skipWhitespace();
    if (this.text[this.position] === '}') {
      this.position++;
      return object;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.position] !== '"') throw this.error('expected a quoted key');
      const key = this.parseString();
      if (object.has(key)) throw this.error(`duplicate key ${JSON.stringify(key)}`);
      this.skipWhitespace();
      this.expect(':');
      object.set(key, this.parseValue(depth + 1));
      this.skipWhitespace();
      if (this.text[this.position] === ',') {
        this.position++;
        continue;
      }
      this.expect('}');
      return object;
    }
  }

  private parseArray(depth: number): JsonValue[] {
    const array: JsonValue[] = [];
    this.position++; // '['
    this.skipWhitespace();
    if (this.text[this.position] === ']') {
      this.position++;
      return array;
    }
    for (;;) {
      array.push(this.parseValue(depth + 1));
      this.skipWhitespace();
      if (this.text[this.position] === ',') {
        this.position++;
        continue;
      }
      this.expect(']');
      return array;
    }
  }

  private parseString(): string {
    this.position++; // opening quote
    let result = '';
    let runStart = this.position;
    for (;;) {
      const c = this.text.charCodeAt(this.position);
      if (Number.isNaN(c)) throw this.error('unterminated string');
      if (c < 0x20) throw this.error('control character inside a string');
      if (c === 0x22) {
        result += this.text.slice(runStart, this.position);
        this.position++;
        return result;
      }
      if (c !== 0x5c) {
        this.position++;
        continue;
      }
      result += this.text.slice(runStart, this.position);
      const escape = this.text[this.position + 1];
      if (escape === 'u') {
        const hex = this.text.slice(this.position + 2, this.position + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw this.error('bad \\u escape');
        result += String.fromCharCode(Number.parseInt(hex, 16));
        this.position += 6;
      } else {
        const replacement = escape === undefined ? undefined : SIMPLE_ESCAPES[escape];
        if (replacement === undefined) throw this.error('bad escape');
        result += replacement;
        this.position += 2;
      }
      runStart = this.position;
    }
  }

  private parseNumber(): number {
    NUMBER.lastIndex = this.position;
    const match = NUMBER.exec(this.text);
    if (!match) throw this.error(`unexpected character ${JSON.stringify(this.text[this.position])}`);
    this.position += match[0].length;
    return Number(match[0]);
  }

  private parseLiteral<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.position)) throw this.error(`expected ${word}`);
    this.position += word.length;
    return value;
  }

  private expect(character: string): void {
    if (this.text[this.position] !== character) throw this.error(`expected '${character}'`);
    this.position++;
  }
}
