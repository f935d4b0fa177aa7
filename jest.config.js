/** Jest with @swc/jest on native ESM (run with NODE_OPTIONS=--experimental-vm-modules). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', {
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'es6' },
    }],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // test/load runs on its own: npm run test:load (jest.load.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/load/'],
  testTimeout: 30000,
  // One temporary directory per run, removed at the end (test/helpers/global-setup.mjs).
  globalSetup: '<rootDir>/test/helpers/global-setup.mjs',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.mjs',
  maxWorkers: 2,
};
