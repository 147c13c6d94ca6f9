import 'taro-cloud-wasm/register';
import Taro from '@tarojs/taro';
import './app.css';

// As the Taro docs: init once, before any other cloud call. The web needs to know where CloudBase is:
// `?endpoint=` in the page URL (the E2E passes its cloud-emulator), else the CloudBase URL of the env.
const endpoint = new URLSearchParams(window.location.search).get('endpoint') || undefined;
Taro.cloud.init({ env: 'taro-e2e', endpoint, traceUser: true });

function App({ children }) {
  return children;
}

export default App;
