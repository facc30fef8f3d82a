import type { ConfigFragment } from '../../infra/options.js';

/** The realtime stream's settings: heartbeat, bounds per client, tickets and the resume window. */
export interface RealtimeConfig {
  realtimeHeartbeatMs: number;
  realtimeSendBufferBytes: number;
  realtimeMaxFrameBytes: number;
  realtimeMaxSubscriptions: number;
  realtimeMaxStreamsPerPrincipal: number;
  realtimeMaxStreamsPerTenant: number;
  realtimeTicketSeconds: number;
  realtimeResumeHours: number;
  realtimePollIntervalMs: number;
}

export const realtimeOptions: ConfigFragment<RealtimeConfig>['options'] = {
  realtimeHeartbeatMs: {
    env: 'PLEXICA_REALTIME_HEARTBEAT_MS',
    kind: { type: 'int', min: 50, max: 300_000 },
    default: 30_000,
    description:
      'Heartbeat of /api/v1/events/stream both ways (seed 002: 30 s); a client silent for two beats is closed (4408)',
  },
  realtimeSendBufferBytes: {
    env: 'PLEXICA_REALTIME_SEND_BUFFER_BYTES',
    kind: { type: 'int', min: 1024, max: 64 * 1024 * 1024 },
    default: 1024 * 1024,
    description:
      'Bytes queued for one slow client before it is told (PLX_REALTIME_SLOW_CONSUMER) and dropped (4429); it resumes on reconnect',
  },
  realtimeMaxFrameBytes: {
    env: 'PLEXICA_REALTIME_MAX_FRAME_BYTES',
    kind: { type: 'int', min: 256, max: 1024 * 1024 },
    default: 16 * 1024,
    description: 'Largest frame a client may send on the WebSocket; a larger one closes it (1009)',
  },
  realtimeMaxSubscriptions: {
    env: 'PLEXICA_REALTIME_MAX_SUBSCRIPTIONS',
    kind: { type: 'int', min: 1, max: 10_000 },
    default: 100,
    description: 'Subscriptions (channel + type filters) one stream may hold',
  },
  realtimeMaxStreamsPerPrincipal: {
    env: 'PLEXICA_REALTIME_MAX_STREAMS_PER_PRINCIPAL',
    kind: { type: 'int', min: 1, max: 100_000 },
    default: 20,
    description:
      'Open streams one user or API key may hold on one instance; one more is refused with 429 PLX_REALTIME_TOO_MANY_STREAMS',
  },
  realtimeMaxStreamsPerTenant: {
    env: 'PLEXICA_REALTIME_MAX_STREAMS_PER_TENANT',
    kind: { type: 'int', min: 1, max: 1_000_000 },
    default: 5000,
    description: "Open streams of one tenant's principals on one instance; one more is refused with 429",
  },
  realtimeTicketSeconds: {
    env: 'PLEXICA_REALTIME_TICKET_SECONDS',
    kind: { type: 'int', min: 1, max: 300 },
    default: 30,
    description:
      'Lifetime of a one-time stream ticket (POST /api/v1/events/stream/ticket) for browsers, which cannot set headers on a WebSocket',
  },
  realtimeResumeHours: {
    env: 'PLEXICA_REALTIME_RESUME_HOURS',
    kind: { type: 'int', min: 1, max: 720 },
    default: 24,
    description: 'How far back a reconnecting client can resume; an older id gets a gap frame (reload)',
  },
  realtimePollIntervalMs: {
    env: 'PLEXICA_REALTIME_POLL_INTERVAL_MS',
    kind: { type: 'int', min: 50, max: 60_000 },
    default: 2000,
    description:
      'How often an instance looks at the stream log when no signal woke it (a signal lost while the channel was down)',
  },
};
