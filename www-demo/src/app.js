// The demo app: one text input, one button, one cloud function. The emulator that serves this page also
// answers the SDK, so the endpoint is simply this page's origin.
import { cloud } from 'taro-cloud-wasm';

cloud.init({ env: 'demo-env', endpoint: location.origin });

const form = document.getElementById('form');
const input = document.getElementById('name');
const button = document.getElementById('call');
const result = document.getElementById('result');
const details = document.getElementById('details');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  button.disabled = true;
  result.className = '';
  result.textContent = 'Calling…';
  details.textContent = '';
  try {
    const res = await cloud.callFunction({ name: 'hello', data: { name: input.value } });
    result.textContent = res.result.message;
    details.textContent = `${res.errMsg} · requestID ${res.requestID}`;
  } catch (error) {
    result.className = 'error';
    result.textContent = error.errMsg || String(error);
    details.textContent = `errCode ${error.errCode}`;
  } finally {
    button.disabled = false;
  }
});

button.disabled = false;
document.body.dataset.ready = 'true';
