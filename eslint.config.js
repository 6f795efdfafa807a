// The lint of the browser code (`make lint-js`, run by `make test`): ESLint's recommended
// rules, which find real mistakes (an undefined name, an unused import, an unreachable branch),
// and a few more for this code: modules only, strict equality, no swallowed errors.
import js from '@eslint/js';
import globals from 'globals';

export default [
  {
    files: ['web/static/js/**/*.js'],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: globals.browser,
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      ...js.configs.recommended.rules,
      eqeqeq: ['error', 'always'],
      'no-var': 'error',
      'prefer-const': 'error',
      'no-implicit-globals': 'error',
      'no-unused-vars': ['error', { caughtErrors: 'none' }],
      'no-shadow': 'error',
      'no-self-compare': 'error',
      'array-callback-return': 'error',
      'consistent-return': 'error',
      'no-template-curly-in-string': 'error',
      'no-unreachable-loop': 'error',
      // An empty catch must say why nothing is done (a comment), like every other empty block;
      // `.catch(() => {})` is refused outright: report the error or tell the person.
      'no-empty': ['error', { allowEmptyCatch: false }],
      'no-restricted-syntax': ['error', {
        selector: "CallExpression[callee.property.name='catch'] > ArrowFunctionExpression[body.type='BlockStatement'][body.body.length=0]",
        message: 'An error swallowed: report it (client-errors.js) or tell the person.',
      }],
    },
  },
];
