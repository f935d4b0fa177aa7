/** `npm run test:load`: bounded load and fault scenarios against real processes (each under a minute). */
import base from './jest.config.js';

export default {
  ...base,
  testMatch: ['<rootDir>/test/load/**/*.test.ts'],
  testPathIgnorePatterns: [],
  testTimeout: 60000,
  maxWorkers: 1,
};
