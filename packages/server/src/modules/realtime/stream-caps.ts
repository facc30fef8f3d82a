import { PlexicaError } from '../../infra/errors.js';
import type { RealtimeConfig } from './config.js';
import type { StreamContext } from './service.js';

/**
 * The bounds on open streams of this instance: per principal (a user or an API key) and per
 * tenant. `admit` refuses one more before the upgrade; `opened`/`closed` keep the counts,
 * under the key a stream was counted with (its principal may be refreshed while it is open).
 */
export function createStreamCaps<S extends object>(
  config: Pick<RealtimeConfig, 'realtimeMaxStreamsPerPrincipal' | 'realtimeMaxStreamsPerTenant'>,
  tenantStreams: (tenantId: string) => number,
) {
  const perPrincipal = new Map<string, number>();
  const countedAs = new WeakMap<S, string>();
  const keyOf = (ctx: StreamContext) => `${ctx.tenant.id}:${ctx.principal?.id ?? ''}`;
  return {
    /** @throws 429 `PLX_REALTIME_TOO_MANY_STREAMS` */
    admit(ctx: StreamContext): void {
      if ((perPrincipal.get(keyOf(ctx)) ?? 0) >= config.realtimeMaxStreamsPerPrincipal)
        throw new PlexicaError('PLX_REALTIME_TOO_MANY_STREAMS', {
          detail: `at most ${config.realtimeMaxStreamsPerPrincipal} open streams per user or API key; close one first`,
        });
      if (tenantStreams(ctx.tenant.id) >= config.realtimeMaxStreamsPerTenant)
        throw new PlexicaError('PLX_REALTIME_TOO_MANY_STREAMS', {
          detail: `this tenant has ${config.realtimeMaxStreamsPerTenant} open streams on this instance`,
        });
    },
    opened(stream: S, ctx: StreamContext): void {
      const key = keyOf(ctx);
      perPrincipal.set(key, (perPrincipal.get(key) ?? 0) + 1);
      countedAs.set(stream, key);
    },
    closed(stream: S): void {
      const key = countedAs.get(stream);
      if (key === undefined) return;
      countedAs.delete(stream);
      const left = (perPrincipal.get(key) ?? 1) - 1;
      if (left > 0) perPrincipal.set(key, left);
      else perPrincipal.delete(key);
    },
  };
}
