// Types for layering-rule.js (plain JS so ESLint loads it without a TypeScript loader on Node 20).
import type { ESLint, Rule } from 'eslint';

/** What an import statement points at. */
export interface ImportTarget {
  /** As written in the source. */
  specifier: string;
  kind: 'builtin' | 'package' | 'file';
  /** For kind 'package': '@scope/name' or 'name'. */
  packageName: string | null;
  /** For kind 'file': the repository-relative, '/'-separated path. */
  file: string | null;
  /** `import type` / `export type` (erased at build time). */
  typeOnly: boolean;
}

/** One row of the layering table. */
export interface LayeringRule {
  /** Shown in every message. */
  name: string;
  /** Where the row applies: entries ending in '/' are folders ('' is everything), others single files. */
  files: string[];
  /** Files or folders exempt from the row. */
  except?: string[];
  /** The reason the message gives. */
  why: string;
  /** Also refuse `import(x)` / `require(x)` with a computed name, which cannot be checked. */
  literalOnly?: boolean;
  forbids(target: ImportTarget): boolean;
}

export declare const LAYERING_RULES: LayeringRule[];
export declare const layeringRule: Rule.RuleModule;
export declare const localPlugin: ESLint.Plugin;
