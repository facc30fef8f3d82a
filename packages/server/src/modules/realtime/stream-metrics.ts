import { Counter, Gauge, type Registry } from 'prom-client';
import type { StreamTransport } from './session.js';

/** The stream metrics of an instance; the connections gauge counts `streams` at each scrape. */
export function streamMetrics(
  registry: Registry,
  streams: Iterable<{ transport: Pick<StreamTransport, 'kind'> }>,
) {
  new Gauge({
    name: 'realtime_connections',
    help: 'Open event streams on this instance',
    labelNames: ['transport'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const counts = { ws: 0, sse: 0 };
      for (const s of streams) counts[s.transport.kind] += 1;
      this.set({ transport: 'ws' }, counts.ws);
      this.set({ transport: 'sse' }, counts.sse);
    },
  });
  const messages = new Counter({
    name: 'realtime_messages_sent_total',
    help: 'Events sent on streams',
    registers: [registry],
  });
  const drops = new Counter({
    name: 'realtime_backpressure_drops_total',
    help: 'Streams dropped because the client read slower than events came',
    registers: [registry],
  });
  const fills = new Counter({
    name: 'realtime_resume_fills_total',
    help: 'Resumes filled from the stream log',
    registers: [registry],
  });
  const filled = new Counter({
    name: 'realtime_resume_events_total',
    help: 'Events sent from the stream log by resumes',
    registers: [registry],
  });
  return { messages, drops, fills, filled };
}
