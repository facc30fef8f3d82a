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

describe('configuration', () => {
  it('documents every setting in the README table, as its option says, in module order', () => {
    // the table is the options rendered (readmeRow): a changed default or range fails here
    const rows = readme.split('\n').filter((line) => line.startsWith('| `PLEXICA_'));
    expect(rows).toEqual(Object.values(OPTIONS).map(readmeRow));
  });

  it('checks the storage settings that only make sense together', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return [];
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems;
      }
    };
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
