/** The shortest wait before a delivery that found its endpoint's slots taken is tried again. */
const MIN_WAIT_MS = 1000;

/** A slot (released with the attempt's latency, none when it sent nothing), or when to look again. */
export type SlotAnswer = { release(latencyMs: number | undefined): void } | { retryInMs: number };

/**
 * Attempts in flight to each endpoint in this process, at most `limit` at once.
 * The deliver jobs share the worker's slots (webhooks/index.ts): without a
 * bound, an endpoint that answers in 10 s ends up holding every one of them
 * and each other endpoint waits behind it. A delivery that finds its
 * endpoint's slots taken is not an attempt; it comes back after about as long
 * as that endpoint takes to answer (its recent average, or the age of its
 * oldest attempt in flight, at least a second, at most the timeout), so a
 * slow endpoint's backlog costs a few re-enqueues per answer, not a poll each.
 *
 * Per process: n worker processes let n × `limit` attempts reach one endpoint.
 */
export function createEndpointSlots(options: { limit: number; timeoutMs: number }) {
  const endpoints = new Map<string, { started: number[]; averageMs?: number }>();
  return {
    take(endpointId: string): SlotAnswer {
      const now = Date.now();
      let entry = endpoints.get(endpointId);
      if (!entry) {
        entry = { started: [] };
        endpoints.set(endpointId, entry);
      }
      const state = entry;
      if (state.started.length >= options.limit) {
        const expected = Math.max(state.averageMs ?? 0, now - Math.min(...state.started), MIN_WAIT_MS);
        // a little jitter: a backlog released together does not come back together
        return { retryInMs: Math.round(Math.min(expected, options.timeoutMs) * (1 + Math.random() * 0.2)) };
      }
      state.started.push(now);
      return {
        release(latencyMs) {
          state.started.splice(state.started.indexOf(now), 1);
          if (latencyMs !== undefined)
            state.averageMs =
              state.averageMs === undefined ? latencyMs : 0.8 * state.averageMs + 0.2 * latencyMs;
          // an idle endpoint is forgotten: the map holds the endpoints being delivered to
          if (state.started.length === 0) endpoints.delete(endpointId);
        },
      };
    },
  };
}
