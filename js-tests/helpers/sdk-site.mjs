// A static site for the browser suites: the built package (pkg/index.mjs) next to a page that puts its `cloud` on
// `window` and marks the body ready; served by cloud-emulator's `--hosting`.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './emulator.mjs';

/** Makes the site in a new temp dir (named after `name`) and returns the dir; the caller removes it. */
export function makeSdkSite(name) {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  copyFileSync(join(REPO_ROOT, 'pkg', 'index.mjs'), join(dir, 'taro-cloud-wasm.mjs'));
  writeFileSync(
    join(dir, 'index.html'),
    `<!doctype html><meta charset="utf-8"><title>${name}</title><link rel="icon" href="data:,">
<script type="module">
  import { cloud } from './taro-cloud-wasm.mjs';
  window.cloud = cloud;
  document.body.dataset.ready = 'true';
</script><body></body>`,
  );
  return dir;
}
