// `local/layering`: which runtime each folder may touch, driven by the one table LAYERING_RULES (in the
// spirit of VS Code's `local/code-layering`). Every import form is checked: `import`, `export ... from`,
// `import()` with a literal, `require('...')` and `import x = require('...')`.
//
// Only imports are checked here. The other half of "pure", no DOM globals, is enforced by
// tsconfig.pure.json (ES library only, no DOM, no @types/node), so `document` or `process` there fails
// to type-check.
import { builtinModules } from 'node:module';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Table paths are relative to the repository root, wherever ESLint was started from. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The pure layers: they must run anywhere (main, worker, renderer, tests) with nothing but the ES library. */
/** The pure layers: folders end with '/'. tsconfig.pure.json lists the same set for the no-DOM, no-Node type check. */
export const PURE_LAYERS = ['main/api/contract.ts', 'main/engine/graph/', 'main/engine/nets/', 'main/engine/tokenizers/', 'main/engine/schedulers/', 'main/engine/random/', 'main/engine/io/npy.ts', 'main/engine/providers/', 'main/engine/training/', 'main/engine/imaging/canny.ts'];
const CONTRACT = 'main/api/contract.ts';
/** Packages that only work in Node or Electron's main process (native add-ons, Node APIs). */
const NODE_ONLY_PACKAGES = ['electron', 'onnxruntime-node', 'better-sqlite3', 'sharp', 'ws', 'commander', 'bindings'];
/** npm packages the renderer may use: browser code only. Add one here, with care, to let the UI use it. */
const RENDERER_PACKAGES = ['svelte'];

/** @type {import('./layering-rule').LayeringRule[]} (the row fields are documented in layering-rule.d.ts) */
export const LAYERING_RULES = [
  {
    name: 'pure-layers',
    files: PURE_LAYERS,
    literalOnly: true,
    why: 'pure layers (the API contract, graph, nets, tokenizers, schedulers, random, the .npy codec) import no Node built-ins, no Electron, no native or Node-only packages, and no project file outside the pure layers',
    forbids: (t) => t.kind === 'builtin' || (t.kind === 'package' && NODE_ONLY_PACKAGES.includes(t.packageName ?? '')) || (t.kind === 'file' && !inAny(t.file, PURE_LAYERS)),
  },
  {
    name: 'contract-imports-nothing',
    files: [CONTRACT],
    literalOnly: true,
    why: 'the API contract imports nothing at run time (type-only imports are fine), which is what makes it safe to bundle into the renderer and the preload',
    forbids: (t) => !t.typeOnly,
  },
  {
    name: 'engine-imports-downward',
    files: ['main/engine/'],
    why: 'the engine is the bottom of main/: it imports its own files and the one foundation helper main/files/atomic-write.ts, never the layers that use it (api, models, library, gallery, jobs, cli…); types they share with it live in the engine',
    forbids: (t) => t.kind === 'file' && !inAny(t.file, ['main/engine/', 'main/files/atomic-write.ts']),
  },
  {
    name: 'onnxruntime-in-ort-host-only',
    files: [''],
    except: ['main/engine/runtime/ort-host.ts'],
    why: 'main/engine/runtime/ort-host.ts is the one module that imports onnxruntime-node; everything else talks to the runtime through it',
    forbids: (t) => t.kind === 'package' && t.packageName === 'onnxruntime-node',
  },
  {
    name: 'electron-in-shell-only',
    files: [''],
    except: ['main/electron/', 'preload/'],
    why: 'only main/electron/ and preload/ import electron; the rest of main/ also runs in serve mode and the CLI, where there is no Electron',
    forbids: (t) => t.kind === 'package' && t.packageName === 'electron',
  },
  {
    name: 'renderer-sandbox',
    files: ['renderer/'],
    literalOnly: true,
    why: `the renderer is untrusted browser code: it imports its own files, browser packages (${RENDERER_PACKAGES.join(', ')}) and the API contract (types and name tables; the contract imports nothing), never Node, Electron or other main/ modules`,
    forbids: (t) =>
      t.kind === 'builtin' ||
      (t.kind === 'package' && !RENDERER_PACKAGES.includes(t.packageName ?? '')) ||
      (t.kind === 'file' && !inAny(t.file, ['renderer/', CONTRACT])),
  },
  {
    name: 'preload-narrow',
    files: ['preload/'],
    literalOnly: true,
    why: 'the sandboxed preload may import only electron, the API contract and its own files',
    forbids: (t) =>
      t.kind === 'builtin' || (t.kind === 'package' && t.packageName !== 'electron') || (t.kind === 'file' && !inAny(t.file, ['preload/', CONTRACT])),
  },
];

const CODE_EXTENSION = /\.(?:[cm]?[jt]s|svelte)$/;

function withoutExtension(path) {
  return path.replace(CODE_EXTENSION, '');
}

/** Whether a repo-relative path lies in a table entry ('' is everything; 'dir/' a folder; else one file, any code extension). */
function inEntry(path, entry) {
  if (entry === '' || entry.endsWith('/')) return path.startsWith(entry);
  return withoutExtension(path) === withoutExtension(entry);
}

function inAny(path, entries) {
  return path !== null && entries.some((entry) => inEntry(path, entry));
}

const BUILTINS = new Set(builtinModules);

function packageNameOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

function toRepoPath(absolutePath, root) {
  return relative(root, absolutePath).split(sep).join('/');
}

/** @returns {import('./layering-rule').ImportTarget} */
function classify(specifier, typeOnly, filename, root) {
  if (specifier.startsWith('node:') || BUILTINS.has(specifier) || BUILTINS.has(packageNameOf(specifier))) {
    return { specifier, kind: 'builtin', packageName: null, file: null, typeOnly };
  }
  if (specifier.startsWith('.') || isAbsolute(specifier)) {
    const target = isAbsolute(specifier) ? specifier : resolve(dirname(filename), specifier);
    return { specifier, kind: 'file', packageName: null, file: toRepoPath(target, root), typeOnly };
  }
  return { specifier, kind: 'package', packageName: packageNameOf(specifier), file: null, typeOnly };
}

function literalString(node) {
  if (node?.type === 'Literal' && typeof node.value === 'string') return node.value;
  if (node?.type === 'TemplateLiteral' && node.expressions.length === 0) return node.quasis[0]?.value.cooked ?? null;
  return null;
}

/** @type {import('eslint').Rule.RuleModule} */
export const layeringRule = {
  meta: {
    type: 'problem',
    docs: { description: 'Keep each folder to the runtimes it may touch (see LAYERING_RULES in tools/eslint/layering-rule.js).' },
    schema: [],
    messages: {
      forbidden: "[{{rule}}] '{{specifier}}' may not be imported from {{file}}: {{why}}.",
      computed: '[{{rule}}] {{file}} may only import modules named by a string literal, so the layering can be checked: {{why}}.',
    },
  },
  create(context) {
    const root = REPO_ROOT;
    const file = toRepoPath(context.filename, root);
    const rows = LAYERING_RULES.filter((row) => inAny(file, row.files) && !inAny(file, row.except ?? []));
    if (rows.length === 0) return {};

    function check(node, sourceNode, typeOnly) {
      const specifier = literalString(sourceNode);
      if (specifier === null) {
        const strictRow = rows.find((row) => row.literalOnly);
        if (strictRow) context.report({ node, messageId: 'computed', data: { rule: strictRow.name, file, why: strictRow.why } });
        return;
      }
      const target = classify(specifier, typeOnly, context.filename, root);
      for (const row of rows) {
        if (row.forbids(target)) {
          context.report({ node, messageId: 'forbidden', data: { rule: row.name, specifier, file, why: row.why } });
        }
      }
    }

    return {
      ImportDeclaration: (node) => check(node, node.source, node.importKind === 'type'),
      ExportNamedDeclaration: (node) => {
        if (node.source) check(node, node.source, node.exportKind === 'type');
      },
      ExportAllDeclaration: (node) => check(node, node.source, node.exportKind === 'type'),
      ImportExpression: (node) => check(node, node.source, false),
      TSImportEqualsDeclaration: (node) => {
        if (node.moduleReference?.type === 'TSExternalModuleReference') check(node, node.moduleReference.expression, node.importKind === 'type');
      },
      CallExpression: (node) => {
        if (node.callee.type === 'Identifier' && node.callee.name === 'require' && node.arguments.length === 1) check(node, node.arguments[0], false);
      },
    };
  },
};

/** The local plugin: `local/layering`. */
export const localPlugin = { meta: { name: 'local' }, rules: { layering: layeringRule } };
