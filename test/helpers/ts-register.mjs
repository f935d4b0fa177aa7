// `node --import ./test/helpers/ts-register.mjs file.ts`: installs ts-loader.mjs's hooks.
import { register } from 'node:module';

register('./ts-loader.mjs', import.meta.url);
