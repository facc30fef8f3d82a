// A child process holding N WebSocket clients of a stream, so their work is not on the server's thread.
import { WebSocket } from 'ws';

const now = () => performance.timeOrigin + performance.now();
let sockets = [];
let latencies = [];
let expected = 0;
let received = 0;

process.on('message', async (msg) => {
  if (msg.cmd === 'connect') {
    received = 0;
    expected = 0;
    const started = now();
    let failed = 0;
    const one = () =>
      new Promise((resolve) => {
        const ws = new WebSocket(msg.url, { headers: msg.headers, perMessageDeflate: false });
        ws.on('open', () => ws.send(JSON.stringify(msg.subscribe)));
        ws.on('error', () => {
          failed += 1;
          resolve();
        });
        ws.on('message', (data) => {
          const text = data.toString();
          if (text.startsWith('{"type":"event"')) {
            const frame = JSON.parse(text);
            latencies.push(now() - frame.event.data.sentAt);
            received += 1;
            if (expected > 0 && received >= expected) process.send({ done: true, latencies });
          } else if (text.includes(msg.readyOn ?? '"subscribed"')) resolve();
          else if (text === '{"type":"ping"}') ws.send('{"type":"pong"}');
        });
        sockets.push(ws);
      });
    for (let i = 0; i < msg.n; i += msg.batch) {
      await Promise.all(Array.from({ length: Math.min(msg.batch, msg.n - i) }, one));
    }
    process.send({
      ready: true,
      connectMs: now() - started,
      failed,
      open: sockets.length - failed,
      received,
    });
  } else if (msg.cmd === 'expect') {
    latencies = [];
    received = 0;
    expected = msg.count;
  } else if (msg.cmd === 'close') {
    for (const ws of sockets) ws.terminate();
    sockets = [];
    process.send({ closed: true });
  }
});
