// cloud-emulator dashboard: one ES module, no framework, no build step (see docs/dashboard.md).
// Every page is a { mount, load, areas } object: `mount` builds its controls once, `load` refreshes its
// data and runs again whenever the server pushes a change in one of its `areas` — so live updates never
// reset a form or an editor the user is typing in.

const PRESETS = [
  ['PRIVATE', 'PRIVATE — only the creator reads and writes'],
  ['READONLY', 'READONLY — everyone reads, the creator writes'],
  ['ADMINWRITE', 'ADMINWRITE — everyone reads, only the admin writes'],
  ['ADMINONLY', 'ADMINONLY — only the admin reads and writes'],
  ['custom', 'Custom rules (JSON)'],
];
const PAGE_SIZE = 20;

// ---- small helpers --------------------------------------------------------------------------------

/** An element: h('button', { class: 'primary', onclick }, 'Save'). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else if (key in el && key !== 'list' && key !== 'form') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(key, value);
  return search.toString();
}

/** Calls the dashboard API; throws an Error with the server's code and message. */
async function api(path, { method = 'GET', json, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, credentials: 'same-origin' };
  if (method !== 'GET') init.headers['x-cloud-emulator-dashboard'] = '1';
  if (json !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body !== undefined) init.body = body;
  const response = await fetch(`/_/api/${path}`, init);
  if (response.status === 401) {
    location.reload();
    throw new Error('signed out');
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${data.code || response.status}: ${data.message || response.statusText}`);
  return data;
}

let toastTimer;
function toast(message, bad = false) {
  const el = document.getElementById('toast');
  el.className = bad ? 'toast bad' : 'toast';
  el.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.textContent = ''; }, bad ? 8000 : 3000);
}

/** Runs an action, showing its failure. */
async function attempt(action, done) {
  try {
    const result = await action();
    if (done) toast(done);
    return result;
  } catch (err) {
    toast(err.message, true);
    return undefined;
  }
}

const time = (ms) => (ms ? new Date(ms).toLocaleString() : '—');
const size = (bytes) => (bytes < 1024 ? `${bytes} B` : bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1048576).toFixed(1)} MiB`);
const short = (text, max = 120) => (text && text.length > max ? `${text.slice(0, max)}…` : text || '');

/** Wire dates {"$date": ms} shown as {"$date": "ISO"} for editing (the server reads both). */
function toEditor(value) {
  if (Array.isArray(value)) return value.map(toEditor);
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === '$date' && typeof value.$date === 'number') {
      return { $date: new Date(value.$date).toISOString() };
    }
    return Object.fromEntries(keys.map((key) => [key, toEditor(value[key])]));
  }
  return value;
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${err.message}`);
  }
}

function insertAtCursor(textarea, text) {
  const { selectionStart: start, selectionEnd: end, value } = textarea;
  textarea.value = value.slice(0, start) + text + value.slice(end);
  textarea.selectionStart = textarea.selectionEnd = start + text.length;
  textarea.focus();
}

const envInput = () => document.getElementById('env');
const currentEnv = () => envInput().value.trim();

// ---- pages ----------------------------------------------------------------------------------------

const overview = {
  title: 'Overview',
  areas: ['requests'],
  mount(main) {
    this.body = h('div');
    main.append(h('h2', { text: 'Overview' }), this.body);
  },
  async load() {
    const data = await api('overview');
    const c = data.counts;
    const card = (n, k) => h('div', { class: 'card' }, h('div', { class: 'n', text: n }), h('div', { class: 'k', text: k }));
    const env = currentEnv() || 'local';
    this.body.replaceChildren(
      h('div', { class: 'cards' },
        card(c.collections, 'collections'), card(c.documents, 'documents'), card(c.files, `files (${size(c.fileBytes)})`),
        card(c.users, 'users'), card(c.functions, 'functions'), card(`${Math.floor(data.uptimeSecs / 60)} min`, 'uptime')),
      h('div', { class: 'panel' },
        h('table', {},
          h('tbody', {},
            [['Endpoint', data.url], ['Port', data.port], ['Data dir', data.dataDir], ['Functions dir', data.functionsDir],
              ['Env', data.pinnedEnv ? `${data.pinnedEnv} (pinned with --env)` : 'any env id accepted'],
              ['Envs seen', data.envs.join(', ') || '—']]
              .map(([k, v]) => h('tr', {}, h('th', { scope: 'row', text: k }), h('td', { class: 'mono', text: v }))))),
        h('p', {}, 'In your app: ', h('code', { text: `cloud.init({ env: '${data.pinnedEnv || env}', endpoint: '${data.url}' })` }))),
      h('h3', { text: 'Recent errors' }),
      data.recentErrors.length ? requestTable(data.recentErrors) : h('p', { class: 'muted', text: 'No errors so far.' }),
    );
    updateEnvs(data);
  },
};

const database = {
  title: 'Database',
  areas: ['database'],
  selected: null,
  offset: 0,
  mount(main) {
    this.list = h('ul', { class: 'list', 'aria-label': 'Collections' });
    const name = h('input', { id: 'new-collection-name', required: true, pattern: '[A-Za-z0-9_][A-Za-z0-9_.\\-]{0,63}', autocomplete: 'off' });
    const rules = presetSelect('new-collection-rules', 'PRIVATE', false);
    const form = h('form', {
      onsubmit: async (event) => {
        event.preventDefault();
        const created = await attempt(() => api('database/collections', { method: 'POST', json: { env: currentEnv(), name: name.value, rules: rules.value } }), `collection ${name.value} created`);
        if (created) { this.select(name.value); name.value = ''; }
      },
    }, h('h3', { text: 'New collection' }),
    h('label', { class: 'block' }, 'Name', name),
    h('label', { class: 'block' }, 'Rules', rules),
    h('button', { type: 'submit', class: 'primary' }, 'Create collection'));
    this.detail = h('section', { class: 'panel', 'aria-label': 'Collection' }, h('p', { class: 'muted', text: 'Choose or create a collection.' }));
    main.append(h('h2', { text: 'Database' }),
      h('div', { class: 'split' },
        h('section', { class: 'panel', 'aria-label': 'Collections' }, h('h3', { text: 'Collections' }), this.list, form),
        this.detail));
  },
  async load() {
    const { collections } = await api(`database/collections?${qs({ env: currentEnv() })}`);
    this.collections = collections;
    this.list.replaceChildren(...collections.map((c) => h('li', {},
      h('button', { 'aria-current': c.name === this.selected ? 'true' : 'false', onclick: () => this.select(c.name) },
        `${c.name} `, h('span', { class: 'muted', text: `(${c.count})` })))));
    if (!collections.length) this.list.append(h('li', { class: 'muted', text: 'No collections on this env.' }));
    const current = collections.find((c) => c.name === this.selected);
    if (this.selected && !current) { this.selected = null; this.detail.replaceChildren(h('p', { class: 'muted', text: 'Choose or create a collection.' })); }
    if (current) await this.loadDocuments();
  },
  select(name) {
    this.selected = name;
    this.offset = 0;
    this.buildDetail();
    this.load().catch((err) => toast(err.message, true));
  },
  buildDetail() {
    const name = this.selected;
    const meta = (this.collections || []).find((c) => c.name === name) || { rules: 'PRIVATE' };
    const isPreset = typeof meta.rules === 'string';
    const preset = presetSelect('rules-preset', isPreset ? meta.rules : 'custom', true);
    const custom = h('textarea', { id: 'rules-custom', spellcheck: false, rows: 5, disabled: isPreset },
      isPreset ? '{\n  "read": "doc._openid == auth.openid",\n  "write": "doc._openid == auth.openid"\n}' : JSON.stringify(meta.rules, null, 2));
    preset.addEventListener('change', () => { custom.disabled = preset.value !== 'custom'; });
    const saveRules = async () => {
      const rules = preset.value === 'custom' ? parseJsonOrToast(custom.value, 'custom rules') : preset.value;
      if (rules === undefined) return;
      await attempt(() => api('database/rules', { method: 'POST', json: { env: currentEnv(), name, rules } }), `rules of ${name} saved`);
    };
    this.where = h('input', { id: 'where', class: 'mono', size: 60, placeholder: '{"done": false}', autocomplete: 'off', spellcheck: false });
    this.rows = h('tbody');
    this.pager = h('span', { class: 'muted' });
    this.editor = h('div');
    const file = h('input', { type: 'file', id: 'import-file', accept: '.json,.jsonl,application/json' });
    const base = `env=${encodeURIComponent(currentEnv())}&collection=${encodeURIComponent(name)}`;
    this.detail.replaceChildren(
      h('div', { class: 'row' }, h('h3', { text: `Collection ${name}` }),
        h('button', { class: 'danger', onclick: async () => {
          if (!confirm(`Delete collection ${name} and all its documents?`)) return;
          if (await attempt(() => api(`database/collections?${qs({ env: currentEnv(), name })}`, { method: 'DELETE' }), `collection ${name} deleted`)) {
            this.selected = null;
            this.detail.replaceChildren(h('p', { class: 'muted', text: 'Choose or create a collection.' }));
            this.load();
          }
        } }, 'Delete collection')),
      h('details', {}, h('summary', { text: 'Rules' }),
        h('label', { class: 'block' }, 'Rules preset', preset),
        h('label', { class: 'block' }, 'Custom rules (JSON: read, write, create, update, delete)', custom),
        h('button', { class: 'primary', onclick: saveRules }, 'Save rules')),
      h('form', { class: 'row', onsubmit: (event) => { event.preventDefault(); this.offset = 0; this.loadDocuments(); } },
        h('label', {}, 'Filter (where, JSON)', this.where), h('button', { type: 'submit' }, 'Apply filter'),
        h('button', { type: 'button', onclick: () => this.edit(null) }, 'Add document')),
      this.editor,
      h('table', {}, h('thead', {}, h('tr', {}, h('th', { text: '_id' }), h('th', { text: 'document' }), h('th', { text: '' }))), this.rows),
      h('div', { class: 'row' },
        h('button', { onclick: () => { this.offset = Math.max(0, this.offset - PAGE_SIZE); this.loadDocuments(); } }, 'Previous page'),
        h('button', { onclick: () => { if (this.offset + PAGE_SIZE < this.total) { this.offset += PAGE_SIZE; this.loadDocuments(); } } }, 'Next page'),
        this.pager),
      h('div', { class: 'row' },
        h('a', { href: `/_/api/database/export?${base}`, download: `${name}.json` }, `Export ${name}.json`),
        h('a', { href: `/_/api/database/export?${base}&rules=1`, download: `${name}.rules.json` }, 'Export rules'),
        h('label', {}, 'Import JSON Lines', file),
        h('button', { onclick: async () => {
          if (!file.files[0]) return toast('Choose a file first', true);
          const done = await attempt(() => api(`database/import?${base}`, { method: 'POST', body: file.files[0] }));
          if (done) toast(`${done.imported} documents imported`);
        } }, 'Import')),
    );
  },
  async loadDocuments() {
    let data;
    try {
      data = await api(`database/documents?${qs({ env: currentEnv(), collection: this.selected, where: this.where.value, offset: this.offset, limit: PAGE_SIZE })}`);
    } catch (err) {
      this.rows.replaceChildren(h('tr', {}, h('td', { colspan: 3, class: 'bad', text: err.message })));
      return;
    }
    this.total = data.total;
    this.pager.textContent = data.total ? `${data.offset + 1}–${data.offset + data.documents.length} of ${data.total}` : 'no documents';
    this.rows.replaceChildren(...data.documents.map((doc) => {
      const shown = toEditor(doc);
      return h('tr', {},
        h('td', { class: 'mono', text: JSON.stringify(doc._id) }),
        h('td', { class: 'json mono', title: JSON.stringify(shown), text: JSON.stringify(shown) }),
        h('td', {}, h('button', { onclick: () => this.edit(doc), 'aria-label': `Edit document ${doc._id}` }, 'Edit')));
    }));
  },
  edit(doc) {
    const adding = doc === null;
    const text = h('textarea', { id: 'document-editor', spellcheck: false, rows: 12 },
      adding ? '{\n  \n}' : JSON.stringify(toEditor(doc), null, 2));
    const close = () => this.editor.replaceChildren();
    const save = async () => {
      const document = parseJsonOrToast(text.value, 'the document');
      if (document === undefined) return;
      const env = currentEnv();
      const collection = this.selected;
      const ok = adding
        ? await attempt(() => api('database/documents', { method: 'POST', json: { env, collection, document } }), 'document added')
        : await attempt(() => api('database/documents', { method: 'PUT', json: { env, collection, id: doc._id, document } }), 'document saved');
      if (ok) { close(); this.loadDocuments(); }
    };
    this.editor.replaceChildren(h('div', { class: 'panel' },
      h('label', { class: 'block' }, adding ? 'New document (JSON; dates as {"$date": "ISO"})' : `Document ${doc._id} (JSON; dates as {"$date": "ISO"})`, text),
      h('div', { class: 'row' },
        h('button', { class: 'primary', onclick: save }, adding ? 'Add' : 'Save document'),
        h('button', { onclick: () => insertAtCursor(text, JSON.stringify({ $date: new Date().toISOString() })) }, 'Insert date'),
        h('button', { onclick: () => insertAtCursor(text, '{"type": "Point", "coordinates": [113.32, 23.13]}') }, 'Insert Geo point'),
        !adding && h('button', { class: 'danger', onclick: async () => {
          if (!confirm(`Delete document ${doc._id}?`)) return;
          const q = qs({ env: currentEnv(), collection: this.selected, id: JSON.stringify(doc._id) });
          if (await attempt(() => api(`database/documents?${q}`, { method: 'DELETE' }), 'document deleted')) { close(); this.loadDocuments(); }
        } }, 'Delete document'),
        h('button', { onclick: close }, 'Cancel'))));
    text.focus();
  },
};

function presetSelect(id, value, withCustom) {
  return h('select', { id }, ...PRESETS.filter(([key]) => withCustom || key !== 'custom')
    .map(([key, label]) => h('option', { value: key, selected: key === value }, label)));
}

function parseJsonOrToast(text, what) {
  try {
    return parseJson(text, what);
  } catch (err) {
    toast(err.message, true);
    return undefined;
  }
}

const storage = {
  title: 'Storage',
  areas: ['storage'],
  mount(main) {
    this.prefix = h('input', { id: 'prefix', autocomplete: 'off', placeholder: 'images/', size: 30 });
    this.rows = h('tbody');
    this.rule = h('span', { class: 'muted' });
    this.preview = h('div', { class: 'preview', 'aria-live': 'polite' });
    const file = h('input', { type: 'file', id: 'upload-file' });
    const path = h('input', { id: 'upload-path', autocomplete: 'off', size: 30, placeholder: 'cloudPath (default: prefix + file name)' });
    main.append(h('h2', { text: 'Storage' }),
      h('div', { class: 'panel' },
        h('form', { class: 'row', onsubmit: (event) => { event.preventDefault(); this.load(); } },
          h('label', {}, 'Path prefix', this.prefix), h('button', { type: 'submit' }, 'Browse'), this.rule),
        h('div', { class: 'row' },
          h('label', {}, 'File to upload', file), h('label', {}, 'cloudPath', path),
          h('button', { class: 'primary', onclick: async () => {
            const chosen = file.files[0];
            if (!chosen) return toast('Choose a file first', true);
            const target = path.value.trim() || `${this.prefix.value}${chosen.name}`;
            const q = qs({ env: currentEnv(), path: target });
            if (await attempt(() => api(`storage/file?${q}`, { method: 'POST', body: chosen, headers: { 'content-type': chosen.type || 'application/octet-stream' } }), `uploaded ${target}`)) this.load();
          } }, 'Upload'))),
      h('table', {}, h('thead', {}, h('tr', {}, ...['cloudPath', 'size', 'type', 'owner', 'updated', ''].map((t) => h('th', { text: t })))), this.rows),
      h('h3', { text: 'Preview' }), this.preview);
  },
  async load() {
    const data = await api(`storage/files?${qs({ env: currentEnv(), prefix: this.prefix.value })}`);
    this.rule.textContent = `storage rule of ${currentEnv()}: ${data.rule}`;
    this.rows.replaceChildren(...data.files.map((f) => {
      const url = `/_/api/storage/file?${qs({ env: currentEnv(), path: f.path })}`;
      return h('tr', {},
        h('td', { class: 'mono', text: f.path, title: f.fileID }), h('td', { text: size(f.size) }), h('td', { text: f.contentType }),
        h('td', { class: 'mono', text: f.owner || '(admin)' }), h('td', { text: time(f.updated) }),
        h('td', {},
          h('button', { onclick: () => this.show(f, url), 'aria-label': `Preview ${f.path}` }, 'Preview'), ' ',
          h('a', { href: `${url}&download=1`, download: f.path.split('/').pop() }, 'Download'), ' ',
          h('button', { class: 'danger', 'aria-label': `Delete ${f.path}`, onclick: async () => {
            if (!confirm(`Delete ${f.path}?`)) return;
            if (await attempt(() => api(`storage/file?${qs({ env: currentEnv(), path: f.path })}`, { method: 'DELETE' }), `deleted ${f.path}`)) this.load();
          } }, 'Delete')));
    }));
    if (!data.files.length) this.rows.append(h('tr', {}, h('td', { colspan: 6, class: 'muted', text: 'No files under this prefix.' })));
  },
  async show(file, url) {
    const type = file.contentType.split(';')[0].trim();
    if (type.startsWith('image/') && type !== 'image/svg+xml') {
      this.preview.replaceChildren(h('img', { src: url, alt: `Preview of ${file.path}` }));
    } else if (type === 'text/plain' || type === 'application/json' || type.startsWith('text/')) {
      const response = await fetch(url, { credentials: 'same-origin' });
      let body = await response.text();
      if (type === 'application/json') body = attemptPretty(body);
      this.preview.replaceChildren(h('pre', { text: short(body, 20000), 'aria-label': `Contents of ${file.path}` }));
    } else {
      this.preview.replaceChildren(h('p', { class: 'muted', text: `${file.path}: ${type}, ${size(file.size)} — no preview; use Download.` }));
    }
  },
};

function attemptPretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

const functions = {
  title: 'Functions',
  areas: ['functions'],
  selected: null,
  mount(main) {
    this.list = h('ul', { class: 'list', 'aria-label': 'Functions' });
    this.detail = h('section', { class: 'panel', 'aria-label': 'Function' }, h('p', { class: 'muted', text: 'Choose a function.' }));
    main.append(h('h2', { text: 'Functions' }), h('div', { class: 'split' }, h('section', { class: 'panel' }, h('h3', { text: 'Functions' }), this.list), this.detail));
  },
  async load() {
    const data = await api('functions');
    this.list.replaceChildren(...data.functions.map((f) => h('li', {},
      h('button', { 'aria-current': f.name === this.selected ? 'true' : 'false', onclick: () => this.select(f.name) },
        `${f.name} `, h('span', { class: f.errors ? 'bad' : 'muted', text: `(${f.calls} calls${f.errors ? `, ${f.errors} failed` : ''})` })))));
    if (!data.functions.length) this.list.append(h('li', { class: 'muted', text: `No functions in ${data.functionsDir}` }));
    if (this.selected) await this.loadCalls();
  },
  select(name) {
    this.selected = name;
    const event = h('textarea', { id: 'run-event', rows: 4, spellcheck: false }, '{}');
    const openid = h('input', { id: 'run-openid', autocomplete: 'off', placeholder: 'empty: an admin call' });
    const output = h('div', { 'aria-live': 'polite' });
    this.calls = h('tbody');
    this.detail.replaceChildren(
      h('h3', { text: `Function ${name}` }),
      h('details', { open: true }, h('summary', { text: 'Run with this event' }),
        h('label', { class: 'block' }, 'Event (JSON)', event),
        h('label', { class: 'block' }, 'Caller openid', openid),
        h('button', { class: 'primary', onclick: async () => {
          const payload = parseJsonOrToast(event.value, 'the event');
          if (payload === undefined) return;
          const result = await attempt(() => api('functions/run', { method: 'POST', json: { env: currentEnv(), name, event: payload, openid: openid.value.trim() } }));
          if (result) output.replaceChildren(h('pre', { text: result.error ? `${result.error.code}: ${result.error.message}` : JSON.stringify(result.result, null, 2) }));
        } }, 'Run'), output),
      h('h3', { text: 'Recent calls (live)' }),
      h('table', {}, h('thead', {}, h('tr', {}, ...['time', 'duration', 'status', 'caller openid', 'event', 'result / error'].map((t) => h('th', { text: t })))), this.calls));
    this.load().catch((err) => toast(err.message, true));
  },
  async loadCalls() {
    const { invocations } = await api(`functions/invocations?${qs({ function: this.selected, limit: 50 })}`);
    this.calls.replaceChildren(...invocations.flatMap((call) => [
      h('tr', { class: call.status === 'ok' ? '' : 'error' },
        h('td', { text: time(call.started) }), h('td', { text: `${call.duration_ms.toFixed(1)} ms` }),
        h('td', { class: call.status === 'ok' ? 'ok' : 'bad', text: call.status === 'ok' ? 'ok' : call.error_code }),
        h('td', { class: 'mono', text: call.openid || '(admin)' }),
        h('td', { class: 'json mono', text: short(call.event), title: call.event }),
        h('td', { class: 'json mono', text: short(call.status === 'ok' ? call.result : call.error), title: call.result || call.error || '' })),
      h('tr', {}, h('td', { colspan: 6 },
        h('details', {}, h('summary', { text: `console (${call.logs.length} lines)${call.error ? ', error and stack' : ''}` }),
          h('pre', { class: 'log', text: call.logs.map((l) => `[${l.level}] ${l.text}`).join('\n') || '(no console output)' }),
          call.error && h('pre', { class: 'log', text: call.error }),
          h('p', { class: 'muted mono', text: `requestId ${call.request_id} · env ${call.env}` })))),
    ]));
    if (!invocations.length) this.calls.append(h('tr', {}, h('td', { colspan: 6, class: 'muted', text: 'No calls yet.' })));
  },
};

const users = {
  title: 'Users',
  areas: ['users', 'requests'],
  mount(main) {
    this.rows = h('tbody');
    main.append(h('h2', { text: 'Users' }),
      h('p', { class: 'muted', text: 'Anonymous users seen on every env. "Sign out" revokes all their sessions; their next call signs in again.' }),
      h('table', {}, h('thead', {}, h('tr', {}, ...['env', 'uid', 'openid', 'devices', 'created', 'last seen', 'sessions', ''].map((t) => h('th', { text: t })))), this.rows));
  },
  async load() {
    const data = await api('users');
    this.rows.replaceChildren(...data.users.map((u) => h('tr', {},
      h('td', { text: u.env }), h('td', { class: 'mono', text: u.uid }), h('td', { class: 'mono', text: u.openid }),
      h('td', { class: 'mono', text: u.devices.join(', ') || '—' }), h('td', { text: time(u.created) }), h('td', { text: time(u.last_seen) }),
      h('td', { text: `${u.active_sessions} active, ${u.revoked_sessions} revoked` }),
      h('td', {}, h('button', { class: 'danger', disabled: !u.active_sessions, 'aria-label': `Sign out ${u.uid}`, onclick: async () => {
        const done = await attempt(() => api('users/sign-out', { method: 'POST', json: { env: u.env, uid: u.uid } }));
        if (done) { toast(`${u.uid} signed out (${done.revokedSessions} sessions revoked)`); this.load(); }
      } }, 'Sign out')))));
    if (!data.users.length) this.rows.append(h('tr', {}, h('td', { colspan: 8, class: 'muted', text: 'Nobody has signed in yet.' })));
  },
};

const REQUEST_COLUMNS = ['time', 'action / route', 'env', 'user', 'status', 'duration', 'errCode', 'about', 'rule'];

function requestRow(r) {
  return h('tr', { class: r.code ? 'error' : '' },
    h('td', { text: new Date(r.time).toLocaleTimeString() }), h('td', { class: 'mono', text: r.action === r.path ? `${r.method} ${r.path}` : r.action }),
    h('td', { text: r.env }), h('td', { class: 'mono', text: r.uid }), h('td', { text: r.status }),
    h('td', { text: `${r.duration_ms.toFixed(1)} ms` }), h('td', { class: r.code ? 'bad' : '', text: r.code }),
    h('td', { class: 'mono', text: r.target }), h('td', { class: 'mono', text: r.rule || '' }));
}

function requestTable(entries, body = h('tbody')) {
  body.replaceChildren(...entries.map(requestRow));
  return h('table', {}, h('thead', {}, h('tr', {}, ...REQUEST_COLUMNS.map((t) => h('th', { text: t })))), body);
}

const SHOWN_REQUESTS = 100;

const requests = {
  title: 'Requests',
  areas: ['requests'],
  mount(main) {
    this.filter = h('input', { id: 'request-filter', type: 'search', autocomplete: 'off', placeholder: 'action, env, user, errCode, collection…', size: 40 });
    this.errors = h('input', { id: 'errors-only', type: 'checkbox' });
    this.rows = h('tbody');
    this.empty = h('p', { class: 'muted', text: 'No requests match.' });
    this.lastId = 0;
    this.generation = 0;
    const restart = () => { this.generation += 1; this.lastId = 0; this.rows.replaceChildren(); this.load(); };
    this.filter.addEventListener('input', restart);
    this.errors.addEventListener('change', restart);
    main.append(h('h2', { text: 'Requests' }),
      h('div', { class: 'row' }, h('label', {}, 'Filter', this.filter), h('label', {}, this.errors, 'Errors only')),
      requestTable([], this.rows), this.empty);
  },
  /** Fetches only the requests newer than the last one shown (the live tail stays cheap under load). */
  async load() {
    const generation = this.generation;
    const data = await api(`requests?${qs({ q: this.filter.value, errors: this.errors.checked ? '1' : '', limit: SHOWN_REQUESTS, after: this.lastId || '' })}`);
    // A newer filter started over meanwhile; or another load already showed these.
    if (generation !== this.generation) return;
    data.requests = data.requests.filter((r) => r.id > this.lastId);
    if (data.requests.length) {
      this.lastId = data.requests[0].id;
      this.rows.prepend(...data.requests.map(requestRow));
      while (this.rows.children.length > SHOWN_REQUESTS) this.rows.lastChild.remove();
    }
    this.empty.hidden = this.rows.children.length > 0;
  },
};

// ---- shell: routing, env, live updates ------------------------------------------------------------

const PAGES = { overview, database, storage, functions, users, requests };
let page = null;

function updateEnvs(data) {
  const list = document.getElementById('env-list');
  list.replaceChildren(...data.envs.map((env) => h('option', { value: env })));
  if (!currentEnv()) {
    envInput().value = data.pinnedEnv || data.envs[0] || 'local';
    localStorage.setItem('cloud-emulator-dashboard-env', currentEnv());
  }
}

function show() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const next = PAGES[name] || overview;
  for (const link of document.querySelectorAll('header nav a')) {
    if (link.getAttribute('href') === `#/${name || 'overview'}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  document.getElementById('toast').textContent = '';
  page = next;
  document.title = `${next.title} — cloud-emulator`;
  next.mount(main);
  next.load().catch((err) => toast(err.message, true));
  if (name) main.focus();
}

let lastChanges = null;
let reloading = false;
let reloadAgain = false;

/** Reloads the current page's data; a change arriving meanwhile triggers one more reload. */
async function reload() {
  if (reloading) { reloadAgain = true; return; }
  reloading = true;
  try {
    await page.load();
  } catch (err) {
    toast(err.message, true);
  } finally {
    reloading = false;
    if (reloadAgain) { reloadAgain = false; reload(); }
  }
}

function connect() {
  const live = document.getElementById('live');
  const source = new EventSource('/_/api/events');
  source.addEventListener('open', () => { live.textContent = 'live'; live.classList.add('on'); });
  source.addEventListener('error', () => { live.textContent = 'reconnecting…'; live.classList.remove('on'); });
  source.addEventListener('change', (event) => {
    const changes = JSON.parse(event.data);
    const moved = lastChanges && page.areas.some((area) => changes[area] !== lastChanges[area]);
    lastChanges = changes;
    if (moved) reload();
  });
}

envInput().value = localStorage.getItem('cloud-emulator-dashboard-env') || '';
envInput().addEventListener('change', () => {
  localStorage.setItem('cloud-emulator-dashboard-env', currentEnv());
  if (page === database) database.selected = null;
  show();
});
// Only #/page hashes are pages (the skip link's #main is not).
window.addEventListener('hashchange', () => { if (location.hash.startsWith('#/')) show(); });
document.querySelector('a.skip').addEventListener('click', (event) => {
  event.preventDefault();
  document.getElementById('main').focus();
});
// Keyboard: Alt+1…6 switch pages (every control is also reachable with Tab).
window.addEventListener('keydown', (event) => {
  if (!event.altKey || event.ctrlKey || event.metaKey) return;
  const index = Number(event.key) - 1;
  const names = Object.keys(PAGES);
  if (index >= 0 && index < names.length) { location.hash = `#/${names[index]}`; event.preventDefault(); }
});
if (!currentEnv()) {
  // The first visit: pick the pinned env (or the first one seen) before a page asks for it.
  api('overview').then(updateEnvs, () => {}).finally(() => { show(); connect(); });
} else {
  show();
  connect();
}
