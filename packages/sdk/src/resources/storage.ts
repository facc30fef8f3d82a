import type { Body, Query } from '../operations.js';
import type { components } from '../schema.js';
import { readJson, type Transport, unwrap } from '../transport.js';
import { countingStream, type UploadBody, type UploadProgress } from '../upload-stream.js';

export type StoredFile = components['schemas']['File'];

export interface UploadOptions {
  contentType?: string;
  /** false: fail with PLX_STORAGE_FILE_EXISTS instead of replacing a file. */
  overwrite?: boolean;
  /** Called as the body is handed to the network, at most once per chunk. */
  onProgress?: (progress: UploadProgress) => void;
  /** Cancels the upload; the server keeps the previous file, if any. */
  signal?: AbortSignal;
}

/** `a/b c.txt` → `a/b%20c.txt`: each segment encoded, the slashes kept. */
const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

/** Files of the caller's tenant. Uploads and downloads stream, so they bypass openapi-fetch. */
export function createStorageResource({ api, baseUrl, send }: Transport) {
  const byPath = (path: string) => ({ params: { path: { path } } });
  return {
    /**
     * Streams `body` to `path` in the caller's tenant, reporting progress.
     * @example await plexica.storage.upload('avatars/me.png', file, { onProgress: (p) => bar.update(p.loaded) })
     */
    async upload(path: string, body: UploadBody, options: UploadOptions = {}): Promise<StoredFile> {
      const query = new URLSearchParams({ path });
      if (options.overwrite === false) query.set('overwrite', 'false');
      const response = await send(`/api/v1/storage/upload?${query}`, {
        method: 'POST',
        headers: { 'content-type': options.contentType ?? 'application/octet-stream' },
        body: countingStream(body, options.onProgress),
        signal: options.signal,
        // a stream body needs it (fetch spec); DOM's RequestInit does not declare it yet
        duplex: 'half',
      } as RequestInit);
      return readJson<StoredFile>(response);
    },
    /** The raw response, so the body can be streamed; `range` like `bytes=0-1023`. */
    async download(path: string, options: { range?: string; signal?: AbortSignal } = {}): Promise<Response> {
      const response = await send(`/api/v1/storage/download/${encodePath(path)}`, {
        headers: options.range ? { range: options.range } : {},
        signal: options.signal,
      });
      if (!response.ok) await readJson(response);
      return response;
    },
    info: (path: string) => unwrap(api.GET('/api/v1/storage/info/{path}', byPath(path))),
    list: (query: Query<'/api/v1/storage/list', 'get'> = {}) =>
      unwrap(api.GET('/api/v1/storage/list', { params: { query } })),
    remove: (path: string) => unwrap(api.DELETE('/api/v1/storage/{path}', byPath(path))),
    copy: (body: Body<'/api/v1/storage/copy', 'post'>) => unwrap(api.POST('/api/v1/storage/copy', { body })),
    move: (body: Body<'/api/v1/storage/move', 'post'>) => unwrap(api.POST('/api/v1/storage/move', { body })),
    usage: () => unwrap(api.GET('/api/v1/storage/usage')),
    /**
     * A URL that works without a credential until it expires (GET downloads, PUT uploads).
     * A server without a public URL answers with a path; it is made absolute against `baseUrl`.
     */
    signedUrl: async (path: string, query: Query<'/api/v1/storage/signed-url/{path}', 'get'> = {}) => {
      const signed = await unwrap(
        api.GET('/api/v1/storage/signed-url/{path}', { params: { path: { path }, query } }),
      );
      return { ...signed, url: new URL(signed.url, `${baseUrl}/`).toString() };
    },
  };
}
