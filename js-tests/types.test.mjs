// Type tests: `tsc --strict` over js-tests/types/ against the built pkg/*.d.ts and the real @tarojs/taro 4.2.1
// typings (see types/README.md). TypeScript comes from js-tests/bundlers/ and Taro from taro-app/, both from the
// per-hash npm cache (helpers/cached-install.mjs).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cachedInstall, run } from './helpers/cached-install.mjs';
import { JS_TESTS_DIR, REPO_ROOT } from './helpers/emulator.mjs';

const TYPES_DIR = join(JS_TESTS_DIR, 'types');
const PKG_DIR = join(REPO_ROOT, 'pkg');
let tsc;
let taroModules;
let workDir;

before(async () => {
  const [tools, taro] = await Promise.all([
    cachedInstall(join(JS_TESTS_DIR, 'bundlers'), 'bundlers'),
    cachedInstall(join(REPO_ROOT, 'taro-app'), 'taro-app'),
  ]);
  tsc = join(tools, 'node_modules', 'typescript', 'bin', 'tsc');
  taroModules = join(taro, 'node_modules');
  workDir = mkdtempSync(join(tmpdir(), 'types-test-'));
}, { timeout: 900_000 });

after(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/**
 * Runs `tsc --strict --noEmit` on `files` (names in js-tests/types/); `cloudUnderTest` picks what the module
 * 'cloud-under-test' is. `skipLibCheck` only where Taro's own .d.ts files are in the program: they do not pass
 * --strict themselves (implicit any in `keyof { text arraybuffer }` and the like).
 */
async function typeCheck(name, files, { cloudUnderTest = 'against-ours.ts', skipLibCheck = true } = {}) {
  const config = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      target: 'es2020',
      module: 'esnext',
      moduleResolution: 'bundler',
      lib: ['es2020', 'dom'],
      types: [],
      skipLibCheck,
      noUnusedLocals: false,
      paths: {
        'taro-cloud-wasm': [join(PKG_DIR, 'index.d.ts')],
        'taro-cloud-wasm/register': [join(PKG_DIR, 'register.d.ts')],
        '@tarojs/taro': [join(taroModules, '@tarojs', 'taro', 'types', 'index.d.ts')],
        'cloud-under-test': [join(TYPES_DIR, cloudUnderTest)],
      },
      typeRoots: [join(taroModules, '@types')],
    },
    files: files.map((file) => (file.startsWith('/') ? file : join(TYPES_DIR, file))),
  };
  const path = join(workDir, `tsconfig.${name}.json`);
  writeFileSync(path, JSON.stringify(config, null, 2));
  try {
    await run(process.execPath, [tsc, '-p', path, '--pretty', 'false'], { cwd: workDir, timeoutMs: 300_000 });
  } catch (error) {
    assert.fail(`tsc (${name}) reported errors:\n${error.message}`);
  }
}

test("pkg/index.d.ts itself passes tsc --strict without skipLibCheck", async () => {
  const probe = join(workDir, 'import-only.ts');
  writeFileSync(probe, "import cloud, { cloud as named } from 'taro-cloud-wasm';\nexport const same: typeof cloud = named;\n");
  await typeCheck('declarations', [probe], { skipLibCheck: false });
});

test("a program typed against Taro 4.2.1's cloud typings is valid Taro code", async () => {
  await typeCheck('taro-program-taro', ['taro-program.ts'], { cloudUnderTest: 'against-taro.ts' });
});

test('the same program compiles against taro-cloud-wasm (superset)', async () => {
  await typeCheck('taro-program-ours', ['taro-program.ts'], { cloudUnderTest: 'against-ours.ts' });
});

// callContainer's types come with the SDK's callContainer (branch `container`).
const CALL_CONTAINER_TYPED = readFileSync(join(PKG_DIR, 'index.d.ts'), 'utf8').includes('callContainer');

test("callContainer as Taro types it is valid Taro code", async () => {
  await typeCheck('container-taro', ['taro-program-container.ts'], { cloudUnderTest: 'against-taro.ts' });
});

test(
  'callContainer as Taro types it compiles against taro-cloud-wasm',
  { skip: CALL_CONTAINER_TYPED ? false : 'pkg/index.d.ts has no callContainer yet (branch container)' },
  async () => {
    await typeCheck('container-ours', ['taro-program-container.ts'], { cloudUnderTest: 'against-ours.ts' });
  },
);

test('the api-surface §10 defects are fixed: every probe compiles', async () => {
  await typeCheck('defects', ['defects.ts']);
});

test('each §10 probe is rejected by Taro 4.2.1 itself (so the fixes are real)', async () => {
  // defects.ts against Taro: every probe line must fail; counted from tsc's output.
  const probe = join(workDir, 'defects-against-taro.ts');
  writeFileSync(
    probe,
    `import Taro from '@tarojs/taro';
const cloud = Taro.cloud;
export async function probes() {
  await cloud.getTempFileURL({ fileList: [{ fileID: 'cloud://a', maxAge: 3600 }] });
  const db = cloud.database();
  await db.collection('t').doc('x').get();
  db.collection('t').get({ success: () => undefined });
  new db.Geo.Point(113, 23);
  db.command.exists(true);
  await db.collection('t').where({}).update({ data: {} });
  const line: Taro.DB.IGeo.GeoLineString = db.Geo.LineString([db.Geo.Point(1, 2)]);
  const id: object = cloud.CloudID('x');
  db.collection('t').aggregate().end({ success: () => undefined });
  const nothing: void = cloud.callContainer({ path: '/', success: () => undefined });
  return [line, id, nothing];
}
`,
  );
  const failure = await typeCheck('defects-taro', [probe]).then(
    () => assert.fail('Taro accepted the probes'),
    (error) => error.message,
  );
  const lines = new Set([...failure.matchAll(/defects-against-taro\.ts\((\d+),/g)].map((m) => Number(m[1])));
  assert.deepEqual([...lines].sort((a, b) => a - b), [4, 6, 7, 8, 9, 10, 11, 12, 13, 14], failure);
});

test("Taro's type names (DB.Query.IQueryResult, DB.Document.IWatcher, …) exist in this package's namespaces", async () => {
  await typeCheck('taro-names', ['taro-names.ts']);
});

test('@ts-expect-error negatives: misuse does not type-check', async () => {
  await typeCheck('negatives', ['negatives.ts']);
});

test("import 'taro-cloud-wasm/register' merges this package's signatures into Taro.cloud", async () => {
  await typeCheck('register', ['register.ts']);
});
