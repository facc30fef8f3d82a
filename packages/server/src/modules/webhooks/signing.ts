import { createHmac, randomBytes } from 'node:crypto';

/** Standard Webhooks 1.0: `whsec_` + base64 of the key bytes. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`;

/**
 * `v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`, one per secret,
 * space-separated: during a rotation's overlap both the new and the old
 * secret sign, so a receiver holding either verifies.
 * https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
 */
export function signatureHeader(secrets: string[], id: string, timestamp: number, body: string): string {
  return secrets
    .map((secret) => {
      const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
      return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
    })
    .join(' ');
}
