export default definePageConfig({ navigationBarTitleText: 'Taro.cloud' });
