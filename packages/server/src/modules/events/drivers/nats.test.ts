import { randomBytes, randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { enabled, NATS_URL } from '../../../../test/engines.js';
import { PlexicaError } from '../../../infra/errors.js';
import type { CloudEvent } from '../envelope.js';
import { createNatsEventDriver, type NatsEventDriverOptions } from './nats.js';

const envelope = (type: string): CloudEvent => ({
  specversion: '1.0',
  id: randomUUID(),
  source: '/plexica/core',
  type,
  time: new Date().toISOString(),
  datacontenttype: 'application/json',
  data: {},
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
});

describe.skipIf(!enabled('nats'))('NATS event driver', () => {
  const streams: string[] = [];
  const options = (stream: string, partitions: number): NatsEventDriverOptions => ({
    natsUrl: NATS_URL,
    stream,
    partitions,
    logger: { warn: () => {} },
    pollIntervalMs: 50,
    retention: { maxAgeMs: 3_600_000, maxEvents: 10_000 },
  });
  afterAll(async () => {
    const nc = await connect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    for (const s of streams) await jsm.streams.delete(s).catch(() => false);
    await nc.close();
  });

  it('names PLEXICA_NATS_URL when NATS is unreachable', async () => {
    const err = await createNatsEventDriver({
      ...options('plx-unreachable', 4),
      natsUrl: 'nats://127.0.0.1:1',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlexicaError);
    expect((err as PlexicaError).code).toBe('PLX_EVENTS_UNAVAILABLE');
    expect((err as PlexicaError).message).toMatch(/PLEXICA_NATS_URL/);
  });

  it('keeps the partition count a stream was made with, so a key stays in its partition', async () => {
    const stream = `plx-nats-${randomBytes(4).toString('hex')}`;
    streams.push(stream);
    const first = await createNatsEventDriver(options(stream, 2));
    await first.close();
    const again = await createNatsEventDriver(options(stream, 8));
    const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
    await again.append(
      keys.map((key) => ({ topic: 'acme.part.item.made', key, event: envelope('part.item.made') })),
    );
    await again.append([{ topic: 'acme.part.item.made', key: null, event: envelope('part.item.made') }]);
    await again.close();
    const nc = await connect({ servers: NATS_URL });
    const info = await (await jetstreamManager(nc)).streams.info(stream, { subjects_filter: '>' });
    await nc.close();
    const partitions = Object.keys(info.state.subjects ?? {}).map((s) => s.split('.')[1]);
    expect(new Set(partitions)).toEqual(new Set(['k0', 'k1', 'u']));
    expect(info.state.messages).toBe(41);
  });

  it('keeps the retention of the stream in step with the settings (trim)', async () => {
    const stream = `plx-nats-${randomBytes(4).toString('hex')}`;
    streams.push(stream);
    const driver = await createNatsEventDriver(options(stream, 2));
    expect(await driver.trim({ maxAgeMs: 7_200_000, maxEvents: 5000 })).toBe(0);
    await driver.close();
    const nc = await connect({ servers: NATS_URL });
    const info = await (await jetstreamManager(nc)).streams.info(stream);
    await nc.close();
    expect(info.config.max_age).toBe(7_200_000 * 1_000_000);
    expect(info.config.max_msgs).toBe(5000);
  });

  it('stores an event handed over twice (a relay after a crash) once, but a re-drive again', async () => {
    const stream = `plx-nats-${randomBytes(4).toString('hex')}`;
    streams.push(stream);
    const driver = await createNatsEventDriver(options(stream, 2));
    const event = envelope('dup.item.made');
    await driver.append([{ topic: 'acme.dup.item.made', key: null, event }]);
    await driver.append([{ topic: 'acme.dup.item.made', key: null, event }]);
    await driver.append([
      { topic: 'acme.dup.item.made', key: null, event: { ...event, plexicaredrive: 'g' } },
    ]);
    await driver.close();
    const nc = await connect({ servers: NATS_URL });
    const info = await (await jetstreamManager(nc)).streams.info(stream);
    await nc.close();
    expect(info.state.messages).toBe(2);
  });
});
