// One page, one card per Taro.cloud feature. Every call is written the way the Taro docs (docs.taro.zone
// apis/cloud) write it; the only web-specific thing is where CloudBase is (`endpoint`, see app.js).
// The E2E (js-tests/taro-app.e2e.test.mjs) presses the buttons and reads the `#…-result` views.
import { useState } from 'react';
import Taro from '@tarojs/taro';
import { Button, Progress, Text, View } from '@tarojs/components';
import './index.css';

const endpoint = () => new URLSearchParams(window.location.search).get('endpoint') || undefined;
const show = (value) => JSON.stringify(value);
const failure = (err) => `fail ${err.errCode} ${err.errMsg}`;

function Card({ title, children }) {
  return (
    <View className='card'>
      <Text className='card-title'>{title}</Text>
      {children}
    </View>
  );
}

export default function Index() {
  const [results, setResults] = useState({});
  const [percent, setPercent] = useState(0);
  const [progressSeen, setProgressSeen] = useState([]);
  const [fileID, setFileID] = useState('');
  const set = (key, value) => setResults((previous) => ({ ...previous, [key]: value }));

  // Promise style.
  const callFunction = async () => {
    try {
      const res = await Taro.cloud.callFunction({ name: 'sum', data: { a: 1, b: 2 } });
      set('call', show({ result: res.result, errMsg: res.errMsg }));
    } catch (err) {
      set('call', failure(err));
    }
  };

  // Callback style (success / fail / complete).
  const callFunctionCallbacks = () => {
    Taro.cloud.callFunction({
      name: 'sum',
      data: { a: 20, b: 22 },
      success: (res) => set('callback', show({ result: res.result, errMsg: res.errMsg })),
      fail: (err) => set('callback', failure(err)),
    });
  };

  // chooseImage gives a temp path; uploadFile takes it, and its task reports progress.
  const upload = () => {
    Taro.chooseImage({
      count: 1,
      success: (chosen) => {
        setPercent(0);
        setProgressSeen([]);
        const task = Taro.cloud.uploadFile({
          cloudPath: `photos/${Date.now()}.png`,
          filePath: chosen.tempFilePaths[0],
          success: (res) => {
            setFileID(res.fileID);
            set('upload', show({ fileID: res.fileID, statusCode: res.statusCode, errMsg: res.errMsg }));
          },
          fail: (err) => set('upload', failure(err)),
        });
        task.onProgressUpdate((res) => {
          setPercent(res.progress);
          setProgressSeen((seen) => [...seen, res.progress]);
        });
      },
      fail: (err) => set('upload', `chooseImage ${err.errMsg}`),
    });
  };

  const tempURL = async () => {
    try {
      const res = await Taro.cloud.getTempFileURL({ fileList: [fileID] });
      const [item] = res.fileList;
      set('tempurl', show({ tempFileURL: item.tempFileURL, status: item.status, errMsg: res.errMsg }));
    } catch (err) {
      set('tempurl', failure(err));
    }
  };

  const database = async () => {
    const db = Taro.cloud.database();
    const _ = db.command;
    try {
      for (const [title, rank] of [['write the page', 2], ['ship it', 3], ['test it', 1]]) {
        await db.collection('todos').add({ data: { title, rank, done: false, createdAt: db.serverDate() } });
      }
      await db.collection('todos').add({ data: { title: 'done already', rank: 0, done: true } });
      const res = await db.collection('todos').where({ done: false, rank: _.gte(1) }).orderBy('rank', 'asc').get();
      set('db', show({ titles: res.data.map((todo) => todo.title), errMsg: res.errMsg }));
    } catch (err) {
      set('db', failure(err));
    }
  };

  // A second Cloud on another env (resource sharing): new Cloud(...), then await init() before use.
  const otherCloud = async () => {
    try {
      const shared = new Taro.cloud.Cloud({ resourceEnv: 'taro-e2e-shared', endpoint: endpoint() });
      await shared.init();
      const res = await shared.callFunction({ name: 'sum', data: { a: 2, b: 3 } });
      set('instance', show({ result: res.result, errMsg: res.errMsg }));
    } catch (err) {
      set('instance', failure(err));
    }
  };

  // Cloud hosting: the service is named by the X-WX-SERVICE header, as wx requires.
  const callContainer = async () => {
    try {
      const res = await Taro.cloud.callContainer({
        path: '/greet?lang=en',
        method: 'POST',
        header: { 'X-WX-SERVICE': 'greeter' },
        data: { name: 'Taro' },
      });
      set('container', show({ data: res.data, statusCode: res.statusCode, errMsg: res.errMsg }));
    } catch (err) {
      set('container', failure(err));
    }
  };

  const cards = [
    ['call', 'callFunction (Promise)', callFunction],
    ['callback', 'callFunction (success/fail)', callFunctionCallbacks],
    ['upload', 'chooseImage + uploadFile', upload],
    ['tempurl', 'getTempFileURL', tempURL],
    ['db', 'database add / where / orderBy / get', database],
    ['instance', 'new Taro.cloud.Cloud({ resourceEnv })', otherCloud],
    ['container', 'callContainer', callContainer],
  ];
  return (
    <View className='index'>
      {cards.map(([key, title, run]) => (
        <Card key={key} title={title}>
          <Button id={`${key}-button`} size='mini' onClick={run}>
            Run
          </Button>
          {key === 'upload' && <Progress id='upload-progress' percent={percent} showInfo strokeWidth={4} />}
          {key === 'upload' && <Text id='upload-progress-seen'>{progressSeen.join(',')}</Text>}
          <Text id={`${key}-result`} className='result'>
            {results[key] ?? ''}
          </Text>
        </Card>
      ))}
    </View>
  );
}
