// callContainer as Taro 4.2.1's typings (and the Taro docs) write it; compiled like taro-program.ts, against
// Taro's types and against ours. Skipped by types.test.mjs while pkg/index.d.ts has no callContainer.
import type { CloudUnderTest } from 'cloud-under-test';

export async function program(cloud: CloudUnderTest): Promise<unknown[]> {
  const res = await cloud.callContainer<{ greeting: string }>({
    config: { env: 'my-env' },
    path: '/greet?lang=en',
    method: 'POST',
    header: { 'X-WX-SERVICE': 'greeter', 'content-type': 'application/json' },
    data: { name: 'Taro' },
    timeout: 5000,
    responseType: 'text',
  });
  const greeting: string = res.data.greeting;
  const statusCode: number = res.statusCode;
  const header: Record<string, any> = res.header;

  const shared = new cloud.Cloud({ resourceAppid: 'wx0123', resourceEnv: 'shared-env' });
  await shared.init();
  const fromInstance = await shared.callContainer({ path: '/', header: { 'X-WX-SERVICE': 'greeter' } });
  return [greeting, statusCode, header, fromInstance.data];
}
