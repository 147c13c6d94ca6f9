// `CloudUnderTest` for the second compile of taro-program.ts: this package's `cloud`.
import type { cloud } from 'taro-cloud-wasm';

export type CloudUnderTest = typeof cloud;
