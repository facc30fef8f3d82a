import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import type { PlexicaConfig } from '../src/config/index.js';

export interface S3Fixture {
  endpoint: string;
  /** Config for an app that stores through this engine. */
  config(mode?: 'bucket' | 'prefix'): Partial<PlexicaConfig>;
  close(): Promise<void>;
}

/**
 * s3rver on loopback: a real S3 HTTP API on the machine (it does not check
 * signatures, so signing is tested on our own signer, not here).
 */
export async function startS3rver(): Promise<S3Fixture> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'plexica-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: 'plexica-shared', configs: [] }],
  });
  const { port } = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    config: (mode = 'bucket') => ({
      storageDriver: 's3',
      s3Endpoint: endpoint,
      s3Region: 'us-east-1',
      s3AccessKeyId: 'S3RVER',
      s3SecretAccessKey: 'S3RVER',
      s3ForcePathStyle: true,
      s3BucketMode: mode,
      ...(mode === 'prefix' && { s3Bucket: 'plexica-shared' }),
    }),
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * A proxy in front of an S3 endpoint that answers the next `failures`
 * requests with 503 SlowDown (as S3 does under load) and forwards the rest.
 */
export async function startFaultyProxy(target: string) {
  const state = { failures: 0, seen: 0 };
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    state.seen++;
    if (state.failures > 0) {
      state.failures--;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>',
      );
      return;
    }
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    state,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
