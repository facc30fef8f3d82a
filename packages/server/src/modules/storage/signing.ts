import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { PlexicaError } from '../../infra/errors.js';
import type { MasterKey } from '../secrets/index.js';

/**
 * What a Plexica-served signed URL grants: one method on one path of one
 * tenant until `expires`, and no more than that:
 * - a GET serves the one version (blob) that was signed, or nothing;
 * - a PUT is good for one upload (`id`), of `contentType` when the signer
 *   named one, and replaces an existing file only when the signer could.
 */
export type SignedUrlGrant =
  | { method: 'GET'; tenantId: string; path: string; expires: number; version: string }
  | {
      method: 'PUT';
      tenantId: string;
      path: string;
      expires: number;
      id: string;
      contentType: string | undefined;
      overwrite: boolean;
    };

export interface UrlSigner {
  /** `/api/v1/storage/signed/{path}?tenant=…&expires=…&…&signature=…` */
  url(grant: SignedUrlGrant): string;
  /** @throws PLX_STORAGE_SIGNATURE_INVALID, or PLX_STORAGE_SIGNATURE_EXPIRED for a genuine but old URL */
  verify(grant: SignedUrlGrant, signature: string, now?: number): void;
}

// JSON: no value can end one field and begin the next, whatever characters it holds
const canonical = (g: SignedUrlGrant) =>
  JSON.stringify(
    g.method === 'GET'
      ? ['plexica-signed-url-v2', g.method, g.tenantId, g.path, g.expires, g.version]
      : [
          'plexica-signed-url-v2',
          g.method,
          g.tenantId,
          g.path,
          g.expires,
          g.id,
          g.contentType ?? null,
          g.overwrite,
        ],
  );

export const encodePath = (path: string): string => path.split('/').map(encodeURIComponent).join('/');

/**
 * HMAC-SHA256 signed URLs for the filesystem driver (and for uploads on every
 * driver). The key is derived from each master key with HKDF, so every
 * instance that shares the master keys verifies the same URLs, and a rotated
 * master key keeps verifying URLs signed before the rotation. URLs signed
 * before v2 (no version, reusable uploads) no longer verify.
 */
export function createUrlSigner(masterKeys: readonly MasterKey[]): UrlSigner {
  if (masterKeys.length === 0) throw new TypeError('no master key');
  const keys = masterKeys.map((m) =>
    Buffer.from(hkdfSync('sha256', m.key, Buffer.alloc(0), 'plexica/storage/signed-url/v1', 32)),
  );
  const mac = (key: Buffer, grant: SignedUrlGrant) =>
    createHmac('sha256', key).update(canonical(grant)).digest();
  return {
    url(grant) {
      const query = new URLSearchParams({ tenant: grant.tenantId, expires: String(grant.expires) });
      if (grant.method === 'GET') query.set('version', grant.version);
      else {
        query.set('id', grant.id);
        if (grant.contentType !== undefined) query.set('type', grant.contentType);
        query.set('overwrite', String(grant.overwrite));
      }
      query.set('signature', mac(keys[0]!, grant).toString('base64url'));
      return `/api/v1/storage/signed/${encodePath(grant.path)}?${query}`;
    },
    verify(grant, signature, now = Date.now() / 1000) {
      const given = Buffer.from(signature, 'base64url');
      const ok = keys.some((key) => {
        const expected = mac(key, grant);
        return given.length === expected.length && timingSafeEqual(given, expected);
      });
      if (!ok) {
        throw new PlexicaError('PLX_STORAGE_SIGNATURE_INVALID', {
          detail: 'the URL was not signed for this tenant, path and method, or it was altered',
        });
      }
      if (grant.expires <= now) {
        throw new PlexicaError('PLX_STORAGE_SIGNATURE_EXPIRED', {
          detail: `the URL expired at ${new Date(grant.expires * 1000).toISOString()}`,
        });
      }
    },
  };
}
