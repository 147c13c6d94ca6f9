// babel-preset-taro, as Taro's own templates set it up; the runner (webpack5 or vite) comes from config/index.js.
module.exports = {
  presets: [['taro', { framework: 'react', ts: false, compiler: process.env.TARO_APP_RUNNER === 'vite' ? 'vite' : 'webpack5' }]],
};
