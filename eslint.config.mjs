// Type-aware lint for the rules that catch real defects here: a floating promise that rejects
// kills a Node process (an archive must not crash on one bad input), and a promise passed where a
// callback's result is ignored loses its errors.
import tseslint from 'typescript-eslint';

export default tseslint.config({
  files: ['libs/**/*.ts', 'apps/**/*.ts'],
  ignores: ['**/*.spec.ts', 'libs/dimse/src/testing/**'],
  languageOptions: {
    parser: tseslint.parser,
    parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
  },
  linterOptions: { reportUnusedDisableDirectives: 'off' },
  plugins: { '@typescript-eslint': tseslint.plugin },
  rules: {
    '@typescript-eslint/no-floating-promises': 'error',
    '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, properties: false } }],
    '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
  },
});
