import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onSendHookHandler, preHandlerHookHandler } from 'fastify';
import { PlexicaError } from '../infra/errors.js';
import type { IdempotencyStore } from '../infra/idempotency.js';

const KEY = /^[\x21-\x7e]{1,255}$/;
const claims = new WeakMap<FastifyRequest, { scope: string; key: string }>();

/**
 * `Idempotency-Key` (IETF draft) on routes that create things: the first
 * response is stored per caller and replayed for a retry with the same key and
 * body (`Idempotent-Replayed: true`); the same key with another body is 422, and
 * a retry while the first is still running is 409. Responses of 5xx are not
 * kept, so the client may retry those.
 */
export function createIdempotencyHooks(store: IdempotencyStore): {
  preHandler: preHandlerHookHandler;
  onSend: onSendHookHandler;
} {
  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const key = request.headers['idempotency-key'];
    if (key === undefined) return;
    if (typeof key !== 'string' || !KEY.test(key)) {
      throw new PlexicaError('PLX_IDEMPOTENCY_KEY_INVALID', {
        detail: 'Idempotency-Key must be 1–255 visible ASCII characters',
      });
    }
    const principal = request.ctx.principal;
    const scope = principal
      ? `${principal.type}:${principal.id}:${request.ctx.tenant?.id ?? '-'}`
      : `ip:${request.ip}`;
    const fingerprint = createHash('sha256')
      .update(`${request.method} ${request.url}\n${JSON.stringify(request.body ?? null)}`)
      .digest('hex');
    const claim = await store.claim(scope, key, fingerprint);
    if (claim.state === 'mismatch') throw new PlexicaError('PLX_IDEMPOTENCY_KEY_REUSED');
    if (claim.state === 'in_progress') throw new PlexicaError('PLX_IDEMPOTENCY_IN_PROGRESS');
    if (claim.state === 'done') {
      const { statusCode, contentType, body } = claim.response;
      reply.header('idempotent-replayed', 'true');
      if (contentType) reply.header('content-type', contentType);
      return reply
        .status(statusCode)
        .serializer((payload: unknown) => String(payload))
        .send(body);
    }
    claims.set(request, { scope, key });
  };

  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const claim = claims.get(request);
    if (!claim) return payload;
    claims.delete(request);
    if (reply.statusCode >= 500 || typeof payload !== 'string') {
      await store.release(claim.scope, claim.key);
    } else {
      const contentType = reply.getHeader('content-type');
      await store.complete(claim.scope, claim.key, {
        statusCode: reply.statusCode,
        contentType: typeof contentType === 'string' ? contentType : null,
        body: payload,
      });
    }
    return payload;
  };

  return { preHandler: preHandler as preHandlerHookHandler, onSend: onSend as onSendHookHandler };
}
