// @ts-check
import { builtinModules } from 'node:module';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Every Node built-in under both spellings (`fs` and `node:fs`); some exist only with the prefix.
const nodeBuiltins = [
  ...new Set(builtinModules.flatMap((name) => (name.startsWith('node:') ? [name] : [name, `node:${name}`]))),
];

const workflowSandboxMessage =
  'Workflow code runs in the deterministic workflow sandbox: import only types from here (`import type`).';

// Packages and project folders whose values must never reach the workflow bundle; types are erased and fine.
const bannedInWorkflows = [
  ...nodeBuiltins.map((name) => ({ name, message: workflowSandboxMessage, allowTypeImports: true })),
  ...['pg', 'isolated-vm', 'undici', '@temporalio/worker', '@temporalio/client', '@temporalio/activity'].map(
    (name) => ({ name, message: workflowSandboxMessage, allowTypeImports: true }),
  ),
];
const bannedFoldersInWorkflows = ['activities', 'db', 'plugins', 'sandbox', 'api', 'cli'].map((folder) => ({
  group: [`../${folder}`, `../${folder}/*`, `../../${folder}`, `../../${folder}/*`],
  message: `${workflowSandboxMessage} Workflows reach ${folder}/ through activities.`,
  allowTypeImports: true,
}));

export default defineConfig(
  { ignores: ['node_modules/', 'coverage/', '.scimflow/'] },
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after'] },
          ],
        },
      ],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: true },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    // The workflows, and the two engine modules bundled with them (they run in the sandbox too).
    files: ['workflows/**/*.ts', 'engine/logged-error.ts', 'engine/workflow-log-interceptors.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: bannedInWorkflows, patterns: bannedFoldersInWorkflows },
      ],
    },
  },
  {
    // Plain JavaScript (the launcher, this file) and its hand-written declarations sit outside the TypeScript
    // project: lint them without type information.
    files: ['**/*.{js,mjs,cjs}', 'scripts/**/*.d.mts'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
