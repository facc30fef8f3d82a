import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readmeRow } from '../infra/options.js';
import { ConfigError, loadConfig, OPTIONS } from './index.js';

const readme = readFileSync(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../README.md'),
  'utf8',
);

/** What `loadConfig` refuses in `env`, as its problem lines. */
const problems = (env: Record<string, string>) => {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
};

describe('configuration', () => {
  it('documents every setting in the README table, as its option says, in module order', () => {
    // the table is the options rendered (readmeRow): a changed default or range fails here
    const rows = readme.split('\n').filter((line) => line.startsWith('| `PLEXICA_'));
    expect(rows).toEqual(Object.values(OPTIONS).map(readmeRow));
  });

  it('checks the NATS event bus settings: a URL, and a stream name that is one subject token', () => {
    expect(problems({ PLEXICA_EVENTS_DRIVER: 'nats' })).toEqual([
      'PLEXICA_NATS_URL: required when PLEXICA_EVENTS_DRIVER is nats',
    ]);
    expect(
      problems({
        PLEXICA_EVENTS_DRIVER: 'nats',
        PLEXICA_NATS_URL: 'nats://127.0.0.1:4222',
        PLEXICA_EVENTS_NATS_STREAM: 'events.v1',
      }),
    ).toEqual(['PLEXICA_EVENTS_NATS_STREAM: at most 64 letters, digits, _ or -']);
    expect(problems({ PLEXICA_NATS_URL: 'http://127.0.0.1:4222' })[0]).toMatch(
      /^PLEXICA_NATS_URL: must be a nats:/,
    );
  });

  it('checks the storage settings that only make sense together', () => {
    expect(problems({ PLEXICA_STORAGE_DRIVER: 'nfs' })[0]).toMatch(
      /^PLEXICA_STORAGE_DRIVER: must be one of filesystem, s3/,
    );
    expect(problems({ PLEXICA_STORAGE_DRIVER: 's3', PLEXICA_S3_BUCKET_MODE: 'prefix' })).toEqual([
      'PLEXICA_S3_BUCKET: required when PLEXICA_S3_BUCKET_MODE is prefix',
    ]);
    expect(problems({ PLEXICA_STORAGE_DRIVER: 's3', PLEXICA_S3_ACCESS_KEY_ID: 'AKIA' })[0]).toMatch(
      /give both or neither/,
    );
    expect(problems({ PLEXICA_STORAGE_DRIVER: 's3', PLEXICA_S3_BUCKET_PREFIX: 'Bad_Prefix' })[0]).toMatch(
      /^PLEXICA_S3_BUCKET_PREFIX/,
    );
    expect(problems({ PLEXICA_S3_ENDPOINT: 'ftp://x' })[0]).toMatch(
      /^PLEXICA_S3_ENDPOINT: must be a http: or https:/,
    );
    expect(
      problems({
        PLEXICA_STORAGE_DRIVER: 's3',
        PLEXICA_S3_BUCKET_MODE: 'prefix',
        PLEXICA_S3_BUCKET: 'files',
      }),
    ).toEqual([]);
  });
});
