// `CloudUnderTest` for the first compile of taro-program.ts: Taro 4.2.1's own `Taro.cloud` type.
import type Taro from '@tarojs/taro';

export type CloudUnderTest = Taro.TaroStatic['cloud'];
