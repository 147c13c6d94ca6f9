// Taro 4 build config. TARO_APP_RUNNER=vite selects @tarojs/vite-runner, anything else @tarojs/webpack5-runner;
// each runner writes to its own dist/<runner>/. TARO_APP_DEV_PORT is the dev server's port (`taro build --watch`).
import { defineConfig } from '@tarojs/cli';

export default defineConfig(() => {
  const runner = process.env.TARO_APP_RUNNER === 'vite' ? 'vite' : 'webpack5';
  return {
    projectName: 'taro-cloud-app',
    date: '2026-11-29',
    designWidth: 750,
    deviceRatio: { 640: 2.34 / 2, 750: 1, 375: 2, 828: 1.81 / 2 },
    sourceRoot: 'src',
    outputRoot: `dist/${runner}`,
    plugins: [],
    framework: 'react',
    compiler: runner === 'vite' ? 'vite' : 'webpack5',
    cache: { enable: false },
    mini: {},
    h5: {
      publicPath: '/',
      staticDirectory: 'static',
      router: { mode: 'hash' },
      devServer: { host: '127.0.0.1', port: Number(process.env.TARO_APP_DEV_PORT || 10086), open: false },
      postcss: { autoprefixer: { enable: false } },
    },
  };
});
