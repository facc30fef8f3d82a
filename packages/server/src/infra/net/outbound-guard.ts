import { promises as dns, type LookupAddress } from 'node:dns';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { Readable, Transform } from 'node:stream';
import { PlexicaError } from '../errors.js';

/**
 * The one guard every request the server makes on a tenant's behalf goes
 * through (OIDC discovery and JWKS today; webhooks and `http.request` jobs
 * next). A tenant admin chooses those URLs, so without it they reach the
 * server's own network: loopback services, the cloud metadata endpoint, the
 * private LAN (issue 9 item 2).
 *
 * Rules, checked for the first URL and again for every redirect hop:
 * - `https:` only, no credentials in the URL;
 * - the host must not be, nor resolve to, a loopback, private (RFC 1918, ULA
 *   fc00::/7), shared (CGNAT 100.64/10), link-local (169.254/16, fe80::/10),
 *   metadata, unspecified, multicast, documentation or reserved address, nor an
 *   IPv4-mapped / NAT64 / 6to4 form of one; every address of the answer must be
 *   public, not just one;
 * - the connection goes to the very address that was checked (it is handed to
 *   the socket through `lookup`), so DNS rebinding between check and connect
 *   cannot swap it.
 * Hosts on the operator's allow-list (`PLEXICA_OUTBOUND_ALLOW_HOSTS`) skip the
 * scheme and address rules: they may be http and loopback.
 *
 * @example
 *   const guard = createOutboundGuard({ allowHosts: ['idp.internal:8443'] });
 *   await guard.assertSafeUrl(input.issuer);            // at save time
 *   const res = await guard.safeFetch(jwksUri, { signal }); // at use time
 */
export interface OutboundGuard {
  /**
   * Throws `PLX_OUTBOUND_URL_FORBIDDEN` unless `url` may be fetched now
   * (resolving its host). @returns the parsed URL
   */
  assertSafeUrl(url: string | URL): Promise<URL>;
  /**
   * `fetch` through the guard. Redirects are followed by hand (at most
   * `maxRedirects`), each hop checked again; `redirect: 'manual'` returns the
   * 3xx as is. Network failures throw `PLX_OUTBOUND_REQUEST_FAILED`; the body is
   * cut off with an error past `maxResponseBytes`.
   */
  safeFetch(url: string | URL, init?: SafeFetchInit): Promise<Response>;
}

export interface SafeFetchInit {
  method?: string;
  headers?: ConstructorParameters<typeof Headers>[0];
  /** Only buffered bodies, so a 307/308 redirect can send them again. */
  body?: string | Uint8Array;
  signal?: AbortSignal;
  redirect?: 'follow' | 'manual' | 'error';
}

/** Resolves a host name to all its addresses (tests inject one). */
export type HostResolver = (hostname: string) => Promise<LookupAddress[]>;

export interface OutboundGuardOptions {
  /** `host` or `host:port` entries (IPv6 in brackets: `[::1]:8080`); case-insensitive. */
  allowHosts?: readonly string[];
  resolve?: HostResolver;
  /** Per request, including redirects; default 10 s. */
  timeoutMs?: number;
  /** Default 5. */
  maxRedirects?: number;
  /** Default 1 MiB: discovery documents and key sets are small. */
  maxResponseBytes?: number;
}

const systemResolver: HostResolver = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

/** Names that reach a cloud metadata service whatever they resolve to. */
const BLOCKED_HOSTNAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata']);

type V4Range = readonly [base: number, bits: number, label: string];
const v4 = (text: string): number => text.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);

// IANA special-purpose registry (RFC 6890 and successors); the first match names the class
const V4_BLOCKED: V4Range[] = (
  [
    ['169.254.169.254', 32, 'metadata'],
    ['0.0.0.0', 8, 'unspecified'],
    ['10.0.0.0', 8, 'private'],
    ['100.64.0.0', 10, 'shared (CGNAT)'],
    ['127.0.0.0', 8, 'loopback'],
    ['169.254.0.0', 16, 'link-local'],
    ['172.16.0.0', 12, 'private'],
    ['192.0.0.0', 24, 'reserved'],
    ['192.0.2.0', 24, 'documentation'],
    ['192.88.99.0', 24, 'reserved'],
    ['192.168.0.0', 16, 'private'],
    ['198.18.0.0', 15, 'reserved'],
    ['198.51.100.0', 24, 'documentation'],
    ['203.0.113.0', 24, 'documentation'],
    ['224.0.0.0', 4, 'multicast'],
    ['240.0.0.0', 4, 'reserved'],
  ] as const
).map(([base, bits, label]) => [v4(base), bits, label] as const);

function classifyV4(address: number): string | null {
  for (const [base, bits, label] of V4_BLOCKED) {
    const size = 2 ** (32 - bits);
    if (address >= base && address < base + size) return label;
  }
  return null;
}

/** 128-bit value of an IPv6 literal (with `::` and an optional dotted tail), or null. */
function parseV6(text: string): bigint | null {
  const address = text.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  let head = address;
  let tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted?.[1] && dotted[2]) {
    if (isIP(dotted[2]) !== 4) return null;
    const n = v4(dotted[2]);
    head = dotted[1].endsWith('::') ? dotted[1] : dotted[1].slice(0, -1);
    tail = [Math.floor(n / 65536), n % 65536];
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const part = (s: string | undefined) => (s ? s.split(':') : []);
  const left = part(halves[0]);
  const right = part(halves[1]);
  const missing = 8 - tail.length - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...left, ...Array<string>(halves.length === 1 ? 0 : missing).fill('0'), ...right];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return null;
    value = (value << 16n) | BigInt(Number.parseInt(group, 16));
  }
  for (const group of tail) value = (value << 16n) | BigInt(group);
  return value;
}

const prefixOf = (value: bigint, bits: number) => value >> BigInt(128 - bits);
const v6Prefix = (text: string, bits: number) => prefixOf(parseV6(text) ?? 0n, bits);

// ranges inside global unicast 2000::/3 that are not public; everything outside 2000::/3 is refused
const V6_BLOCKED_IN_GLOBAL: Array<readonly [bigint, number, string]> = (
  [
    ['2001::', 23, 'reserved'],
    ['2001:db8::', 32, 'documentation'],
    ['3fff::', 20, 'documentation'],
  ] as const
).map(([base, bits, label]) => [v6Prefix(base, bits), bits, label] as const);

function classifyV6(value: bigint): string | null {
  if (value === 0n) return 'unspecified';
  if (value === 1n) return 'loopback';
  // IPv4-mapped ::ffff:a.b.c.d and NAT64 64:ff9b::a.b.c.d reach the IPv4 address they carry
  if (prefixOf(value, 96) === 0xffffn || prefixOf(value, 96) === v6Prefix('64:ff9b::', 96)) {
    const inner = classifyV4(Number(value & 0xffffffffn));
    return inner ? `${inner} (IPv4 in IPv6)` : null;
  }
  // 6to4 2002:a.b.c.d::/48 carries an IPv4 address in bits 16..48
  if (prefixOf(value, 16) === 0x2002n) {
    const inner = classifyV4(Number((value >> 80n) & 0xffffffffn));
    return inner ? `${inner} (6to4)` : null;
  }
  if (value === parseV6('fd00:ec2::254')) return 'metadata';
  if (prefixOf(value, 7) === v6Prefix('fc00::', 7)) return 'private (ULA)';
  if (prefixOf(value, 10) === v6Prefix('fe80::', 10)) return 'link-local';
  if (prefixOf(value, 8) === 0xffn) return 'multicast';
  if (prefixOf(value, 3) !== 1n) return 'reserved';
  for (const [base, bits, label] of V6_BLOCKED_IN_GLOBAL) if (prefixOf(value, bits) === base) return label;
  return null;
}

/**
 * Why an IP address may not be reached (`'loopback'`, `'private'`,
 * `'metadata'`, …), or null when it is a public unicast address. Anything that
 * is not an IP literal is refused as `'invalid'`.
 */
export function classifyAddress(address: string): string | null {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare.replace(/%.*$/, ''));
  if (family === 4) return classifyV4(v4(bare));
  if (family === 6) {
    const value = parseV6(bare);
    return value === null ? 'invalid' : classifyV6(value);
  }
  return 'invalid';
}

interface AllowEntry {
  host: string;
  port: string | null;
}

const ALLOW_BRACKETED = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/;
const ALLOW_PLAIN = /^([a-z0-9.-]+)(?::(\d{1,5}))?$/;

function parseAllowEntry(entry: string): AllowEntry | null {
  const text = entry.trim().toLowerCase();
  const bracketed = ALLOW_BRACKETED.exec(text);
  const match = bracketed ?? ALLOW_PLAIN.exec(text);
  if (!match?.[1] || (bracketed && isIP(match[1]) !== 6)) return null;
  if (match[2] !== undefined && Number(match[2]) > 65535) return null;
  return { host: match[1].replace(/\.$/, ''), port: match[2] ?? null };
}

/** Why an allow-list entry is malformed, or null (for the configuration check at boot). */
export function allowHostProblem(entry: string): string | null {
  return parseAllowEntry(entry) ? null : `"${entry}" is not a host or host:port (IPv6 as [addr]:port)`;
}

const bareHost = (url: URL) =>
  url.hostname
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
const effectivePort = (url: URL) => url.port || (url.protocol === 'https:' ? '443' : '80');

// what a client (or a tenant admin) is told; the reason goes to `cause`, for logs only
const forbidden = (reason: string, publicDetail = 'URL must be https on a public host') =>
  new PlexicaError('PLX_OUTBOUND_URL_FORBIDDEN', { detail: publicDetail, cause: new Error(reason) });

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([101, 204, 205, 304]);

export function createOutboundGuard(options: OutboundGuardOptions = {}): OutboundGuard {
  const {
    resolve = systemResolver,
    timeoutMs = 10_000,
    maxRedirects = 5,
    maxResponseBytes = 1024 * 1024,
  } = options;
  const allowed = (options.allowHosts ?? []).map((entry) => {
    const parsed = parseAllowEntry(entry);
    if (!parsed) throw new Error(`outbound allow-list: ${allowHostProblem(entry)}`);
    return parsed;
  });

  const isAllowListed = (url: URL) => {
    const host = bareHost(url);
    const port = effectivePort(url);
    return allowed.some((entry) => entry.host === host && (entry.port === null || entry.port === port));
  };

  /** Checks a URL and returns the address to connect to (null: let the system resolve). */
  const check = async (input: string | URL): Promise<{ url: URL; address: LookupAddress | null }> => {
    let url: URL;
    try {
      url = new URL(input);
    } catch (err) {
      throw new PlexicaError('PLX_OUTBOUND_URL_FORBIDDEN', { detail: 'URL is not valid', cause: err });
    }
    if (url.username || url.password) throw forbidden('credentials in URL', 'URL must not carry credentials');
    const host = bareHost(url);
    const listed = isAllowListed(url);
    if (!listed && url.protocol !== 'https:') throw forbidden(`scheme ${url.protocol}`, 'URL must use https');
    if (listed && url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw forbidden(`scheme ${url.protocol}`, 'URL must use https');
    }
    if (!listed && BLOCKED_HOSTNAMES.has(host)) throw forbidden(`metadata host ${host}`);
    if (isIP(host)) {
      const refused = listed ? null : classifyAddress(host);
      if (refused) throw forbidden(`${host} is ${refused}`);
      return { url, address: null };
    }
    let answers: LookupAddress[];
    try {
      answers = await resolve(host);
    } catch (err) {
      // the same answer as a private address: an unresolvable name says nothing of the inside
      throw new PlexicaError('PLX_OUTBOUND_URL_FORBIDDEN', {
        detail: 'URL must be https on a public host',
        cause: err,
      });
    }
    const first = answers[0];
    if (!first) throw forbidden(`${host} has no addresses`);
    if (!listed) {
      for (const answer of answers) {
        const refused = classifyAddress(answer.address);
        if (refused) throw forbidden(`${host} resolves to ${answer.address} (${refused})`);
      }
    }
    return { url, address: first };
  };

  /** One hop: connects to the checked address only, and buffers nothing but the bound. */
  const send = (
    url: URL,
    address: LookupAddress | null,
    init: { method: string; headers: Headers; body: string | Uint8Array | undefined; signal: AbortSignal },
  ) =>
    new Promise<IncomingMessage>((resolveResponse, reject) => {
      const pinned: LookupFunction | undefined = address
        ? (_hostname, lookupOptions, callback) => {
            if (lookupOptions.all) callback(null, [address]);
            else callback(null, address.address, address.family);
          }
        : undefined;
      const headers: Record<string, string> = {};
      init.headers.forEach((value, key) => {
        headers[key] = value;
      });
      const request = (url.protocol === 'https:' ? https : http).request(url, {
        method: init.method,
        headers,
        signal: init.signal,
        // a fresh socket per request: a pooled one may have been opened without this check
        agent: false,
        ...(pinned && { lookup: pinned }),
      });
      request.on('response', resolveResponse);
      request.on('error', reject);
      request.end(init.body);
    });

  const toResponse = (message: IncomingMessage): Response => {
    const headers = new Headers();
    for (const [key, value] of Object.entries(message.headers)) {
      if (Array.isArray(value)) for (const v of value) headers.append(key, v);
      else if (value !== undefined) headers.set(key, value);
    }
    const status = message.statusCode ?? 502;
    if (NULL_BODY.has(status)) {
      message.resume();
      return new Response(null, { status, statusText: message.statusMessage, headers });
    }
    let seen = 0;
    const bounded = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        seen += chunk.length;
        if (seen > maxResponseBytes) callback(new Error(`response larger than ${maxResponseBytes} bytes`));
        else callback(null, chunk);
      },
    });
    message.on('error', (err) => bounded.destroy(err));
    bounded.on('error', () => message.destroy());
    message.pipe(bounded);
    const body = Readable.toWeb(bounded) as ReadableStream<Uint8Array>;
    return new Response(body, { status, statusText: message.statusMessage, headers });
  };

  return {
    async assertSafeUrl(url) {
      return (await check(url)).url;
    },

    async safeFetch(input, init = {}) {
      const signal = init.signal
        ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)])
        : AbortSignal.timeout(timeoutMs);
      let method = (init.method ?? 'GET').toUpperCase();
      let body = init.body;
      const headers = new Headers(init.headers);
      let target: string | URL = input;
      for (let hop = 0; ; hop += 1) {
        const { url, address } = await check(target);
        let message: IncomingMessage;
        try {
          message = await send(url, address, { method, headers, body, signal });
        } catch (err) {
          throw new PlexicaError('PLX_OUTBOUND_REQUEST_FAILED', { cause: err });
        }
        const status = message.statusCode ?? 0;
        const location = message.headers.location;
        if (!REDIRECTS.has(status) || !location || init.redirect === 'manual') return toResponse(message);
        message.resume();
        if (init.redirect === 'error' || hop >= maxRedirects) {
          throw new PlexicaError('PLX_OUTBOUND_REQUEST_FAILED', {
            cause: new Error(`redirect ${hop + 1} to ${location} not followed`),
          });
        }
        const next = new URL(location, url);
        // fetch spec: 303 (and 301/302 after POST) turn into a GET without a body
        if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
          if (method !== 'HEAD') method = 'GET';
          body = undefined;
          headers.delete('content-type');
          headers.delete('content-length');
        }
        // credentials meant for one origin do not follow a redirect to another
        if (next.origin !== url.origin) {
          headers.delete('authorization');
          headers.delete('cookie');
        }
        target = next;
      }
    },
  };
}
