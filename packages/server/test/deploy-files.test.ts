import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, loadConfig, OPTIONS } from '../src/config/index.js';

// No Docker engine on the CI machines: the image is never built here, so these
// checks are what stands between a renamed setting and a broken deployment file.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FILES = ['Dockerfile', 'compose.yaml', 'deploy/plexica.service'];
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
// every name loadConfig accepts from the environment (PLEXICA_TOKEN is the CLI's, not a setting)
const SETTINGS = new Set([...Object.values(OPTIONS).map((o) => o.env), 'PLEXICA_CONFIG']);

/**
 * The PLEXICA_* variables a file sets: `NAME=value` (Dockerfile ENV, systemd
 * Environment=) outside comments, or the plexica service's environment in
 * compose.yaml, with `${VAR:-default}` read as its default and `${VAR:?…}`
 * (the operator must set it) as a placeholder.
 */
const settingsOf = (file: string): Record<string, string> => {
  const entries: [string, string][] = file.endsWith('.yaml')
    ? Object.entries(
        (parse(read(file)) as { services: { plexica: { environment: Record<string, string> } } }).services
          .plexica.environment,
      )
    : [
        ...read(file)
          .replace(/^\s*#.*$/gm, '')
          .matchAll(/\b(PLEXICA_[A-Z0-9_]+)=(\S*)/g),
      ].map(([, name = '', value = '']) => [name, value]);
  return Object.fromEntries(
    entries
      .filter(([name]) => name.startsWith('PLEXICA_'))
      .map(([name, value]) => [
        name,
        String(value).replace(/\$\{\w+(?::-([^}]*)|:\?[^}]*)\}/g, (_, fallback) => fallback ?? 'placeholder'),
      ]),
  );
};

describe('deployment files', () => {
  it.each(FILES)('%s names only real settings, with values they accept', (file) => {
    const text = read(file);
    const names = [...text.matchAll(/\bPLEXICA_[A-Z0-9_]+/g)].map(([name]) => name);
    expect(names.length, `${file} sets no PLEXICA_* variable`).toBeGreaterThan(0);
    expect(names.filter((name) => !SETTINGS.has(name))).toEqual([]);

    const settings = settingsOf(file);
    expect(Object.keys(settings).length).toBeGreaterThan(0);
    let problems: string[] = [];
    try {
      loadConfig(settings);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems).toEqual([]);
  });

  it('the Dockerfile builds in stages on Node 24, runs as a non-root user and checks /ready', () => {
    const dockerfile = read('Dockerfile');
    const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map(([, image]) => image);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const image of stages) expect(image).toMatch(/^node:24[.-]/);
    const [, user = 'root'] = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].at(-1) ?? [];
    expect(user).not.toMatch(/^(root|0)$/);
    expect(dockerfile).toMatch(/^HEALTHCHECK\b[^\n]*(\\\n[^\n]*)*\/ready/m);
  });

  it('compose.yaml runs Plexica with PostgreSQL, Redis and MinIO', () => {
    const compose = parse(read('compose.yaml')) as {
      services: Record<string, { image?: string; environment?: Record<string, string> }>;
    };
    const images = Object.values(compose.services).map((s) => s.image ?? '');
    expect(images).toEqual(
      expect.arrayContaining([expect.stringMatching(/^postgres:/), expect.stringMatching(/^redis:/)]),
    );
    expect(images.some((image) => image.startsWith('minio/'))).toBe(true);
    const env = compose.services.plexica?.environment ?? {};
    expect(env.PLEXICA_STORAGE_DRIVER).toBe('s3');
    for (const name of [
      'PLEXICA_DATABASE_URL',
      'PLEXICA_REDIS_URL',
      'PLEXICA_MASTER_KEY',
      'PLEXICA_S3_ENDPOINT',
    ])
      expect(env, name).toHaveProperty(name);
  });

  const systemdAnalyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));
  it('the systemd unit restarts the service and parses', async () => {
    const unit = read('deploy/plexica.service');
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^RestartSec=[1-9]/m);
    if (!systemdAnalyze) return; // a machine without systemd: the checks above are all there is
    const { stderr } = await promisify(execFile)(systemdAnalyze, [
      'verify',
      path.join(root, 'deploy/plexica.service'),
    ]).catch((err: { stderr: string }) => err);
    expect(stderr).not.toMatch(/Unknown (key|section)|Invalid|Failed to parse/);
  });
});
