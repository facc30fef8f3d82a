import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Executor } from '../../infra/database/index.js';
import type { RateLimitStore } from '../../infra/rate-limit/store.js';
import type { SignalChannel } from '../../infra/signals/index.js';
import type { ModuleDefinition, PlexicaModule } from '../../module.js';
import type { PermissionRegistry } from '../../permissions.js';
import type { AppsService, EventBus, Subscription } from '../events/index.js';
import type { Authenticator } from '../identity/index.js';
import { type RealtimeConfig, realtimeOptions } from './config.js';
import { createStreamLog, LOG_SIGNAL } from './log.js';
import { realtimeMigrations } from './migrations.js';
import { realtimeRoutes } from './routes.js';
import { createRealtimeService, type RealtimeService } from './service.js';
import { createStreamTickets } from './tickets.js';
import { attachWebSocketStream } from './ws.js';

export type { RealtimeConfig } from './config.js';
export type { RealtimeService } from './service.js';

/** The bus group that copies tenant events into the stream log; its members share the work. */
export const STREAM_LOG_GROUP = 'realtime.log';

/** seed 002: the user's and the tenant's events over WebSocket and SSE, resumable from the stream log. */
export const realtimeModule: ModuleDefinition<RealtimeConfig> = {
  name: 'realtime',
  config: { options: realtimeOptions },
  coreMigrations: realtimeMigrations,
};

export function createRealtimeModule(deps: {
  db: Executor;
  logger: Logger;
  config: RealtimeConfig;
  signals: SignalChannel;
  bus: EventBus;
  apps: AppsService;
  authenticator: Authenticator;
  registry: PermissionRegistry;
  metrics: Registry;
  /** The anonymous window of failed credentials (PLEXICA_RATE_LIMIT_ANONYMOUS per window). */
  failures: { store: RateLimitStore; windowMs: number; max: number };
}): PlexicaModule<RealtimeService> {
  const { config, logger } = deps;
  const log = createStreamLog(deps.db);
  const tickets = createStreamTickets(deps.db);
  const service = createRealtimeService({ ...deps, log, tickets, metrics: deps.metrics });
  let writer: Subscription | undefined;
  let detachWebSocket: (() => void) | undefined;
  return {
    name: 'realtime',
    service,
    async routes(server) {
      detachWebSocket = attachWebSocketStream(server, {
        service,
        maxFrameBytes: config.realtimeMaxFrameBytes,
        logger,
        failures: deps.failures,
      });
      await realtimeRoutes(server, { service, maxChannels: config.realtimeMaxSubscriptions });
      // before the server stops: streams are told to reconnect elsewhere instead of being cut
      server.addHook('preClose', async () => {
        await service.close();
      });
    },
    loops: [
      {
        name: 'realtime.retention',
        role: 'scheduler',
        intervalMs: 3_600_000,
        runAtStart: true,
        run: async () =>
          (await log.trim(config.realtimeResumeHours * 3_600_000)) + (await tickets.purgeExpired()),
      },
    ],
    async start(roles) {
      if (!roles.has('api')) return;
      await service.start();
      writer = await deps.bus.subscribe({
        group: STREAM_LOG_GROUP,
        topics: ['*'],
        handler: async ({ event }) => {
          // platform events (global.*) belong to no tenant's stream
          if (!event.tenantid) return;
          const seq = await log.append({ ...event, tenantid: event.tenantid });
          if (seq !== undefined) service.appended({ seq, tenantId: event.tenantid, event });
          await deps.signals
            .publish(LOG_SIGNAL, { seq: seq ?? null })
            .catch((err: unknown) =>
              logger.warn({ err }, 'realtime wake-up signal lost; the poll covers it'),
            );
        },
      });
    },
    async close() {
      await writer?.close();
      detachWebSocket?.();
      await service.close();
    },
  };
}
