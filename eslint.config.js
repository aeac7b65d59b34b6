// ESLint flat config: recommended rules (syntax-only, so `npm run lint` stays fast), Svelte components,
// and `local/layering` (tools/eslint/layering-rule.js), which keeps each folder to the runtimes it may
// touch.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import svelteConfig from './svelte.config.js';
import { localPlugin, PURE_LAYERS } from './tools/eslint/layering-rule.js';

const CODE = '**/*.{js,mjs,cjs,ts,mts,cts,svelte}';
const SVELTE = ['**/*.svelte', '**/*.svelte.ts', '**/*.svelte.js'];
const PURE = PURE_LAYERS.map((layer) => (layer.endsWith('/') ? `${layer}**` : layer));

export default defineConfig([
  globalIgnores(['out/', 'node_modules/', 'dist/', 'test-results/', 'coverage/', 'bench/cache/', 'shared/', '.vite/']),

  js.configs.recommended,
  tseslint.configs.recommended,
  svelte.configs.recommended,

  {
    name: 'blip/svelte-state',
    files: SVELTE,
    rules: {
      // UI state is replaced, never mutated ($state.raw holding Readonly maps and sets), so plain Map and
      // Set are the right tools there; this rule flags every `new Map()` in a .svelte.ts file regardless.
      'svelte/prefer-svelte-reactivity': 'off',
    },
  },
  {
    name: 'blip/svelte-typescript',
    files: SVELTE,
    languageOptions: {
      parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'], svelteConfig },
    },
  },

  // Globals per runtime. The pure layers get neither Node's nor the browser's (tsconfig.pure.json checks
  // the same for types); TypeScript files rely on the compiler for undefined names anyway.
  { name: 'blip/node-globals', files: [CODE], ignores: ['renderer/**', ...PURE], languageOptions: { globals: globals.node } },
  { name: 'blip/browser-globals', files: ['renderer/**'], languageOptions: { globals: globals.browser } },

  {
    name: 'blip/rules',
    files: [CODE],
    plugins: { local: localPlugin },
    rules: {
      'local/layering': 'error',
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  // Command-line programs talk to the terminal.
  { name: 'blip/terminal-programs', files: ['scripts/**', 'main/cli/**'], rules: { 'no-console': 'off' } },
]);
