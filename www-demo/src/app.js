// The demo app: three cards, one per cloud service — a cloud function, the database and storage.
// The emulator that serves this page also answers the SDK, so the endpoint is simply this page's origin.
import { cloud } from 'taro-cloud-wasm';

cloud.init({ env: 'demo-env', endpoint: location.origin });

const db = cloud.database();
const todos = db.collection('todos');
const $ = (id) => document.getElementById(id);

/** wx errors carry errCode and errMsg; anything else (a bug in this page) still gets shown. */
function describeError(error) {
  return error && error.errMsg !== undefined ? `${error.errCode} ${error.errMsg}` : String(error);
}

// ---------------------------------------------------------------------------------------------------------
// Cloud function: name → hello → greeting (Promise style).

async function callHello(event) {
  event.preventDefault();
  const button = $('hello-call');
  const result = $('hello-result');
  button.disabled = true;
  result.className = 'result';
  result.textContent = 'Calling…';
  $('hello-details').textContent = '';
  try {
    const res = await cloud.callFunction({ name: 'hello', data: { name: $('hello-name').value } });
    result.textContent = res.result.message;
    $('hello-details').textContent = `${res.errMsg} · requestID ${res.requestID}`;
  } catch (error) {
    result.className = 'result error';
    result.textContent = describeError(error);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Todos: collection `todos` has wx's default rule (only the creator reads and writes), so every user sees
// only their own. The where() says so explicitly: '{openid}' is replaced by the caller's openid server-side.
// The list is live: a watch() on the same query re-renders it on every change, from this page or any other
// page of the same user, so writes do not re-read the list. Should the watch end (onError after its own
// reconnect attempts), the card says so and goes back to re-reading after every write.

const mine = () => todos.where({ _openid: '{openid}' });
const listed = () => mine().orderBy('created', 'desc').limit(20);
let live = false;
let renderTicket = 0;

/** Renders `items` with the count read now; an older render finishing late never overwrites a newer one. */
async function showTodos(items) {
  const ticket = ++renderTicket;
  const { total } = await mine().count();
  if (ticket !== renderTicket) return;
  renderTodos(items, total);
  showTodoError('');
}

/** Re-reads the list and the count (first paint, and after every write while the watch is down). */
async function refreshTodos() {
  try {
    await showTodos((await listed().get()).data);
  } catch (error) {
    showTodoError(describeError(error));
  }
}

function watchTodos() {
  listed().watch({
    onChange: (snapshot) => {
      live = true;
      $('todo-live').hidden = false;
      showTodos(snapshot.docs).catch((error) => showTodoError(describeError(error)));
    },
    onError: (error) => {
      live = false;
      $('todo-live').hidden = true;
      showTodoError(`live updates stopped: ${describeError(error)}`);
    },
  });
}

function renderTodos(items, total) {
  $('todo-count').textContent = `${total} ${total === 1 ? 'todo' : 'todos'}`;
  $('todo-empty').hidden = items.length > 0;
  $('todo-list').replaceChildren(...items.map(todoItem));
}

function todoItem(todo) {
  const item = document.createElement('li');
  item.dataset.id = todo._id;
  item.classList.toggle('done', Boolean(todo.done));

  const label = document.createElement('label');
  const checkbox = document.createElement('input');
  checkbox.type = 'checkbox';
  checkbox.checked = Boolean(todo.done);
  checkbox.addEventListener('change', () => changeTodo(() => todos.doc(todo._id).update({ data: { done: !todo.done } })));
  const title = document.createElement('span');
  title.className = 'title';
  title.textContent = todo.title; // textContent, never innerHTML: titles are user input
  label.append(checkbox, title);

  const created = document.createElement('time');
  created.className = 'muted';
  // serverDate() comes back as a Date set by the server's clock, not the browser's.
  if (todo.created instanceof Date) {
    created.dateTime = todo.created.toISOString();
    created.textContent = todo.created.toLocaleTimeString();
  }

  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'icon';
  remove.title = 'Delete';
  remove.setAttribute('aria-label', `Delete ${todo.title}`);
  remove.textContent = '×';
  remove.addEventListener('click', () => changeTodo(() => todos.doc(todo._id).remove()));

  item.append(label, created, remove);
  return item;
}

/**
 * Runs one write (the watch brings the new list; without it, the list is re-read); returns whether the write
 * succeeded. While busy the card ignores clicks (style.css), so two writes never interleave with a
 * half-rendered list.
 */
async function changeTodo(write) {
  const card = $('todos-card');
  card.setAttribute('aria-busy', 'true');
  try {
    await write();
    if (!live) await refreshTodos();
    return true;
  } catch (error) {
    showTodoError(describeError(error));
    return false;
  } finally {
    card.removeAttribute('aria-busy');
  }
}

async function addTodo(event) {
  event.preventDefault();
  const input = $('todo-title');
  const title = input.value.trim();
  if (!title) return;
  // Cleared now, not after the round trip, so whatever is typed meanwhile is kept; a failed add gives it back.
  input.value = '';
  // serverDate(): the order of todos should not depend on each device's clock.
  const added = await changeTodo(() => todos.add({ data: { title, done: false, created: db.serverDate() } }));
  if (!added && !input.value) input.value = title;
  input.focus();
}

function showTodoError(text) {
  $('todo-error').textContent = text;
}

// ---------------------------------------------------------------------------------------------------------
// Files: upload in callback style (that form returns the UploadTask, which reports progress), then ask for a
// temporary URL to show the image; delete removes it from storage.

let currentFileID = null;

function uploadChosenFile() {
  const file = $('file-input').files[0];
  if (!file) return;
  showFileError('');
  setProgress(0);
  $('file-input').disabled = true;
  const task = cloud.uploadFile({
    // A fresh path per upload: the same cloudPath would overwrite, and the old thumbnail may still be cached.
    cloudPath: `demo/${Date.now()}-${safeFileName(file.name)}`,
    file,
    success: (res) => showUploadedFile(res.fileID),
    fail: (error) => showFileError(describeError(error)),
    complete: () => {
      $('file-input').disabled = false;
      $('file-input').value = ''; // choosing the same file again should upload again
    },
  });
  task.onProgressUpdate(({ progress }) => setProgress(progress));
}

/** Keeps the file's own name readable in the cloudPath while avoiding `/` (folders) and odd characters. */
function safeFileName(name) {
  return name.replace(/[^\w.-]+/g, '_').replace(/^\.+/, '') || 'image';
}

/** getTempFileURL and deleteFile report per-file failures inside fileList (status ≠ 0), not by rejecting. */
function itemError(entry) {
  return Object.assign(new Error(entry.errMsg), { errCode: entry.status, errMsg: entry.errMsg });
}

function setProgress(percent) {
  $('upload-progress').value = percent;
  $('upload-percent').textContent = `${percent}%`;
}

async function showUploadedFile(fileID) {
  try {
    const { fileList } = await cloud.getTempFileURL({ fileList: [fileID] });
    const [entry] = fileList;
    if (entry.status !== 0) throw itemError(entry);
    currentFileID = fileID;
    $('file-thumb').src = entry.tempFileURL;
    $('file-id').textContent = fileID;
    $('file-preview').hidden = false;
    $('file-delete').disabled = false;
  } catch (error) {
    showFileError(describeError(error));
  }
}

async function deleteCurrentFile() {
  if (!currentFileID) return;
  $('file-delete').disabled = true;
  try {
    const { fileList } = await cloud.deleteFile({ fileList: [currentFileID] });
    const [entry] = fileList;
    if (entry.status !== 0) throw itemError(entry);
    currentFileID = null;
    $('file-preview').hidden = true;
    $('file-thumb').removeAttribute('src');
    $('file-id').textContent = '';
    setProgress(0);
  } catch (error) {
    $('file-delete').disabled = false;
    showFileError(describeError(error));
  }
}

function showFileError(text) {
  $('file-error').textContent = text;
}

// ---------------------------------------------------------------------------------------------------------

$('hello-form').addEventListener('submit', callHello);
$('todo-form').addEventListener('submit', addTodo);
$('file-input').addEventListener('change', uploadChosenFile);
$('file-delete').addEventListener('click', deleteCurrentFile);

for (const id of ['hello-call', 'todo-add', 'file-input']) $(id).disabled = false;
await refreshTodos();
watchTodos();
// Tests wait for this: handlers are wired and the first list is on screen.
document.body.dataset.ready = 'true';
