import { type Logger, pino } from 'pino';
import type { PlexicaConfig } from '../config/index.js';

/**
 * JSON lines for log collectors; for a person at a terminal (`auto` on a TTY,
 * or `pretty`), pino-pretty's coloured one-line form instead.
 */
export function createLogger(config: Pick<PlexicaConfig, 'logLevel' | 'logFormat'>): Logger {
  const pretty =
    config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true);
  return pino({
    ...(pretty && {
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' },
      },
    }),
    level: config.logLevel,
    base: { service: 'plexica' },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        '*.password',
        '*.accessToken',
        '*.refreshToken',
        '*.secret',
        '*.clientSecret',
        '*.masterKey',
        'password',
        'secret',
      ],
      censor: '[redacted]',
    },
  });
}
