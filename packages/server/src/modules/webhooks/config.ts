import type { ConfigFragment } from '../../infra/options.js';

/** The webhooks module's settings: its retry schedule, timeout and limits. */
export interface WebhooksConfig {
  webhooksRetrySchedule: string[];
  webhooksTimeoutSeconds: number;
  webhooksAutoDisableAfter: number;
  webhooksLogRetentionDays: number;
}

export const webhooksOptions: ConfigFragment<WebhooksConfig>['options'] = {
  webhooksRetrySchedule: {
    env: 'PLEXICA_WEBHOOKS_RETRY_SCHEDULE',
    kind: { type: 'list' },
    default: ['5', '300', '1800', '7200'],
    description:
      'Seconds before each retry of a failed delivery; attempts = entries + 1 (seed 002: 5). A Retry-After answer replaces the entry',
  },
  webhooksTimeoutSeconds: {
    env: 'PLEXICA_WEBHOOKS_TIMEOUT_SECONDS',
    kind: { type: 'int', min: 1, max: 60 },
    default: 15,
    description: 'How long a delivery waits for the endpoint to answer',
  },
  webhooksAutoDisableAfter: {
    env: 'PLEXICA_WEBHOOKS_AUTO_DISABLE_AFTER',
    kind: { type: 'int', min: 1, max: 100_000 },
    default: 100,
    description: 'Consecutive failed attempts after which an endpoint is disabled (seed 002: 100)',
  },
  webhooksLogRetentionDays: {
    env: 'PLEXICA_WEBHOOKS_LOG_RETENTION_DAYS',
    kind: { type: 'int', min: 1, max: 3650 },
    default: 30,
    description: 'How long deliveries and their attempts are kept',
  },
};

/** Problems of the schedule: each entry whole seconds from 0 to a day. */
export function scheduleProblems(config: WebhooksConfig): string[] {
  const bad = config.webhooksRetrySchedule.filter((s) => !/^\d{1,5}$/.test(s) || Number(s) > 86_400);
  return bad.length > 0
    ? [`PLEXICA_WEBHOOKS_RETRY_SCHEDULE: entries must be seconds from 0 to 86400 (got ${bad.join(', ')})`]
    : [];
}
