// Runs one autocannon load in a child process and sends a summary back (see lib.ts runLoad).
import autocannon from 'autocannon';

const spec = await new Promise((resolve) => process.once('message', resolve));
let counter = 0;
const result = await autocannon({
  url: spec.url,
  connections: spec.connections,
  duration: spec.durationSeconds,
  headers: { 'content-type': 'application/json', ...spec.headers },
  requests: spec.requests.map((r) => ({
    method: r.method,
    path: r.path,
    ...(r.body && {
      setupRequest: (req) => {
        counter += 1;
        return { ...req, body: r.body.replaceAll('{n}', `${process.pid}-${Date.now()}-${counter}`) };
      },
    }),
  })),
});
// autocannon has no P95 bucket; P97.5 is reported instead and targets are checked against it (stricter)
process.send({
  requests: result.requests.total,
  errors: result.errors + result.timeouts,
  non2xx: result.non2xx,
  rps: result.requests.average,
  p50: result.latency.p50,
  p97_5: result.latency.p97_5,
  p99: result.latency.p99,
  max: result.latency.max,
});
process.disconnect();
