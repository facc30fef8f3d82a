import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import { PlexicaError } from '../../infra/errors.js';
import type { RealtimeService } from './service.js';
import type { ControlFrame, EncodedEntry, StreamTransport } from './session.js';
import { STREAM_PATH } from './ws.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function sseTransport(reply: FastifyReply): StreamTransport {
  const raw = reply.raw;
  const write = (text: string) => {
    if (!raw.writableEnded) raw.write(text);
  };
  return {
    kind: 'sse',
    sendEvent(encoded: EncodedEntry) {
      encoded.sse ??= `id: ${encoded.entry.seq}\nevent: event\ndata: ${JSON.stringify(encoded.entry.event)}\n\n`;
      write(encoded.sse);
    },
    sendControl(frame: ControlFrame) {
      write(`event: ${frame.type}\ndata: ${JSON.stringify(frame)}\n\n`);
    },
    buffered: () => raw.writableLength,
    ping: () => write(': ping\n\n'),
    close() {
      raw.end();
      // a client that reads nothing keeps the socket: end it
      setTimeout(() => raw.destroy(), 1000).unref();
    },
  };
}

const list = (text: string | undefined) =>
  text === undefined || text === '' ? [] : text.split(',').map((s) => s.trim());

/**
 * The stream's HTTP routes: a one-time ticket for browsers, and the stream as
 * Server-Sent Events for clients behind proxies that refuse upgrades (the
 * WebSocket upgrade of the same path is `ws.ts`).
 */
export async function realtimeRoutes(
  server: Server,
  deps: { service: RealtimeService; maxChannels: number },
) {
  const { service } = deps;
  const tags = ['realtime'];
  server.post(
    `${STREAM_PATH}/ticket`,
    {
      config: { auth: 'authenticated' },
      schema: {
        tags,
        summary: 'A one-time stream ticket (browsers: a WebSocket or EventSource cannot send headers)',
        description:
          'Open `GET /api/v1/events/stream?ticket=…` with it once, within `PLEXICA_REALTIME_TICKET_SECONDS`; ' +
          'the stream then acts as the credential that asked for the ticket.',
        response: responses({
          201: Type.Object({ ticket: Type.String(), expiresAt: Type.String({ format: 'date-time' }) }),
        }),
      },
    },
    async (request, reply) => {
      if (!request.ctx.tenant)
        throw new PlexicaError('PLX_TENANT_REQUIRED', {
          detail: 'a stream belongs to a tenant: use a tenant credential',
        });
      const bearer = BEARER.exec(request.headers.authorization ?? '')?.[1] ?? '';
      return reply.code(201).send(await service.mintTicket(bearer));
    },
  );

  server.get(
    STREAM_PATH,
    {
      // the route authenticates itself: the header, or a ticket in the query (EventSource)
      config: { auth: 'public' },
      schema: {
        tags,
        summary: "The tenant's events as a stream (WebSocket upgrade, or Server-Sent Events)",
        description:
          'WebSocket: send `{"type":"subscribe","channel":"user:me"|"tenant"|"app:{id}","types":["crm.*"]}`; ' +
          'reconnect with `{"type":"resume","lastEventId":"…","subscriptions":[…]}` as the first frame. ' +
          'SSE (`Accept: text/event-stream`): `channels` and `types` in the query, `Last-Event-ID` to resume. ' +
          'Every event carries its id; a gap too old to fill is a `gap` frame.',
        querystring: Type.Object(
          {
            ticket: Type.Optional(Type.String({ maxLength: 100 })),
            channels: Type.Optional(Type.String({ maxLength: 4000 })),
            types: Type.Optional(Type.String({ maxLength: 4000 })),
            lastEventId: Type.Optional(Type.String({ maxLength: 20 })),
          },
          { additionalProperties: false },
        ),
        // the 200 is the event stream itself (hijacked, never serialised); errors before it are problems
        response: responses({
          200: Type.String({ description: 'text/event-stream: `id:`, `event:` and `data:` lines per event' }),
        }),
      },
    },
    async (request, reply) => {
      if (!String(request.headers.accept ?? '').includes('text/event-stream'))
        throw new PlexicaError('PLX_REALTIME_STREAM_EXPECTED');
      const bearer = BEARER.exec(request.headers.authorization ?? '')?.[1];
      const { ticket } = request.query;
      const auth = await service.authenticate({
        ...(bearer && { bearer }),
        ...(ticket !== undefined && { ticket }),
      });
      const channels = list(request.query.channels);
      if (channels.length > deps.maxChannels)
        throw new PlexicaError('PLX_REALTIME_TOO_MANY_SUBSCRIPTIONS', {
          detail: `at most ${deps.maxChannels} channels per stream`,
        });
      const header = request.headers['last-event-id'];
      const lastEventId = (typeof header === 'string' ? header : undefined) ?? request.query.lastEventId;
      service.admit(auth);
      reply.hijack();
      reply.raw.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      reply.raw.write('retry: 2000\n\n');
      const session = service.open(auth, sseTransport(reply));
      request.raw.on('close', () => {
        session.closed = true;
        service.detach(session);
      });
      const types = list(request.query.types);
      const subscriptions = channels.map((channel) => ({ channel, ...(types.length > 0 && { types }) }));
      if (lastEventId === undefined) {
        for (const input of subscriptions) await service.subscribe(session, input);
      } else {
        await service.resume(session, lastEventId, subscriptions).catch((err: unknown) => {
          session.close(0, 'resume refused', {
            type: 'error',
            code: err instanceof PlexicaError ? err.code : 'PLX_INTERNAL',
            ...(err instanceof PlexicaError && { detail: err.message }),
          });
          service.detach(session);
        });
      }
    },
  );
}
