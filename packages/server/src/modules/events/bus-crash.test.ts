import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_ENGINES } from '../../../test/engines.js';
import { type BusFixture, createBusFixture, until } from '../../../test/event-bus.js';
import { systemContext } from '../../context.js';
import type { EventDelivery } from './service.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const lines = (marker: string) =>
  existsSync(marker) ? readFileSync(marker, 'utf8').trim().split('\n').filter(Boolean) : [];

// a consumer in another process needs an engine other processes can reach (not the embedded database)
const CROSS_PROCESS = EVENT_ENGINES.filter((e) => e.crossProcess);

describe.skipIf(CROSS_PROCESS.length === 0)('consumers killed mid-batch (SIGKILL)', () => {
  for (const engine of CROSS_PROCESS)
    describe(engine.name, () => {
      let f: BusFixture;
      let child: ChildProcess | undefined;
      beforeAll(async () => {
        f = await createBusFixture(engine);
      });
      afterAll(async () => {
        child?.kill('SIGKILL');
        await f?.close();
      });

      it('redelivers the batch it had not acked to the group, and not what it had acked', async () => {
        const group = `crash-${randomUUID().slice(0, 8)}`;
        const topics = ['acme.crash.*'];
        const marker = path.join(os.tmpdir(), `plexica-bus-crash-${randomUUID()}`);
        const ctx = systemContext('crash', {
          id: randomUUID(),
          slug: 'acme',
          schema: 'tenant_acme',
          settings: {},
        });
        // the group exists before the events (a new group starts with what comes next)
        const creating = await f.bus.subscribe({ group, topics, handler: async () => {} });
        await creating.close();
        for (let n = 0; n < 10; n++) await f.bus.publish(ctx, 'crash.item.made', { n });
        const started = fork(path.join(here, '../../../test/fixtures/event-consumer.ts'), {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        child = started;
        started.send({ engine, ...f.connection, group, topics, marker, ackBelow: 3 });
        await until(() => lines(marker).length === 10, 'the child to take the batch');
        // its three acks have landed: only the hung seven are still the group's
        await until(async () => (await f.bus.lag(group)) === 7, 'the acks of the child');
        started.kill('SIGKILL');
        await new Promise((resolve) => started.once('exit', resolve));
        const got: EventDelivery[] = [];
        const sub = await f.bus.subscribe({ group, topics, handler: async (d) => void got.push(d) });
        await until(() => got.length === 7, 'the redelivered events');
        await new Promise((r) => setTimeout(r, 300));
        await sub.close();
        expect(lines(marker).filter((l) => l.startsWith('acked')).length).toBe(3);
        expect(got.map((d) => (d.event.data as { n: number }).n).sort((a, b) => a - b)).toEqual([
          3, 4, 5, 6, 7, 8, 9,
        ]);
        expect(got.every((d) => d.attempt === 2)).toBe(true);
      });
    });
});
