import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlexicaError } from '../errors.js';
import { allowHostProblem, classifyAddress, createOutboundGuard } from './outbound-guard.js';

/** The PlexicaError a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<PlexicaError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(PlexicaError);
    return err as PlexicaError;
  }
  throw new Error('expected a rejection');
}

describe('outbound guard: address classes', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['100.127.255.254', 'shared (CGNAT)'],
    ['169.254.10.20', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.7', 'documentation'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fc00::1', 'private (ULA)'],
    ['fd12:3456::1', 'private (ULA)'],
    ['fd00:ec2::254', 'metadata'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    // IPv4-mapped, NAT64 and 6to4 forms reach the IPv4 address inside them
    ['::ffff:127.0.0.1', 'loopback (IPv4 in IPv6)'],
    ['::ffff:7f00:1', 'loopback (IPv4 in IPv6)'],
    ['::ffff:169.254.169.254', 'metadata (IPv4 in IPv6)'],
    ['::ffff:10.0.0.1', 'private (IPv4 in IPv6)'],
    ['64:ff9b::a9fe:a9fe', 'metadata (IPv4 in IPv6)'],
    ['2002:7f00:1::', 'loopback (6to4)'],
    ['::127.0.0.1', 'reserved'],
    ['not-an-ip', 'invalid'],
  ])('%s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    '%s is public',
    (address) => {
      expect(classifyAddress(address)).toBeNull();
    },
  );

  it('checks allow-list entries', () => {
    expect(allowHostProblem('idp.internal')).toBeNull();
    expect(allowHostProblem('127.0.0.1:8443')).toBeNull();
    expect(allowHostProblem('[::1]:8080')).toBeNull();
    expect(allowHostProblem('http://idp.internal')).toMatch(/not a host or host:port/);
    expect(allowHostProblem('idp:99999')).toMatch(/not a host or host:port/);
    expect(() => createOutboundGuard({ allowHosts: ['a b'] })).toThrow(/not a host/);
  });
});

describe('outbound guard: URLs', () => {
  // a resolver that knows a few names, like a poisoned or internal DNS would
  const names: Record<string, string[]> = {
    'public.test': ['93.184.215.14'],
    'internal.test': ['127.0.0.1'],
    'mixed.test': ['93.184.215.14', '10.0.0.5'],
    'mapped.test': ['::ffff:127.0.0.1'],
  };
  const resolve = async (host: string) => {
    const found = names[host];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  const guard = createOutboundGuard({ resolve });

  it('accepts https on a public host', async () => {
    expect((await guard.assertSafeUrl('https://public.test/realms/x')).hostname).toBe('public.test');
    expect((await guard.assertSafeUrl('https://93.184.215.14/')).hostname).toBe('93.184.215.14');
  });

  it.each([
    ['plain http', 'http://public.test/', 'URL must use https'],
    ['another scheme', 'file:///etc/passwd', 'URL must use https'],
    ['credentials', 'https://user:pw@public.test/', 'URL must not carry credentials'],
    ['a loopback literal', 'https://127.0.0.1/', 'URL must be https on a public host'],
    ['a decimal loopback literal', 'https://2130706433/', 'URL must be https on a public host'],
    [
      'the metadata address',
      'https://169.254.169.254/latest/meta-data',
      'URL must be https on a public host',
    ],
    ['the metadata name', 'https://metadata.google.internal/', 'URL must be https on a public host'],
    ['an IPv4-mapped loopback', 'https://[::ffff:127.0.0.1]/', 'URL must be https on a public host'],
    ['an IPv6 ULA', 'https://[fd00:ec2::254]/', 'URL must be https on a public host'],
    ['a name resolving to loopback', 'https://internal.test/', 'URL must be https on a public host'],
    ['a name with one private answer', 'https://mixed.test/', 'URL must be https on a public host'],
    ['a name resolving to mapped loopback', 'https://mapped.test/', 'URL must be https on a public host'],
    // an unknown name is refused with the same words: no oracle on internal DNS
    ['an unresolvable name', 'https://nowhere.test/', 'URL must be https on a public host'],
  ])('refuses %s', async (_name, url, detail) => {
    const err = await rejection(guard.assertSafeUrl(url));
    expect(err.code).toBe('PLX_OUTBOUND_URL_FORBIDDEN');
    expect(err.message).toBe(detail);
  });

  it('refuses localhost with the system resolver', async () => {
    const err = await rejection(createOutboundGuard().assertSafeUrl('https://localhost:8443/'));
    expect(err.code).toBe('PLX_OUTBOUND_URL_FORBIDDEN');
  });
});

describe('outbound guard: requests', () => {
  let target: Server;
  let redirector: Server;
  let targetHits = 0;
  let targetPort = 0;
  let redirectorPort = 0;
  let redirectTo = '';

  const listen = async (server: Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  };

  beforeAll(async () => {
    target = createServer((req, res) => {
      targetHits += 1;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ path: req.url, host: req.headers.host, auth: req.headers.authorization ?? null }),
      );
    });
    redirector = createServer((_req, res) => {
      res.statusCode = 302;
      res.setHeader('location', redirectTo);
      res.end();
    });
    targetPort = await listen(target);
    redirectorPort = await listen(redirector);
  });
  afterAll(async () => {
    await new Promise((r) => target.close(r));
    await new Promise((r) => redirector.close(r));
  });

  it('reaches an allow-listed loopback host over http', async () => {
    const guard = createOutboundGuard({ allowHosts: [`127.0.0.1:${targetPort}`] });
    const res = await guard.safeFetch(`http://127.0.0.1:${targetPort}/keys`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ path: '/keys' });
  });

  it('refuses the same host on a port the allow-list does not name', async () => {
    const guard = createOutboundGuard({ allowHosts: [`127.0.0.1:${targetPort}`] });
    const before = targetHits;
    const err = await rejection(guard.safeFetch(`http://127.0.0.1:${redirectorPort}/`));
    expect(err.code).toBe('PLX_OUTBOUND_URL_FORBIDDEN');
    expect(targetHits).toBe(before);
  });

  it('connects to the address it checked, not one the system resolves later', async () => {
    // pinned.test exists only in this resolver: reaching the server proves the socket used its answer
    let lookups = 0;
    const guard = createOutboundGuard({
      allowHosts: [`pinned.test:${targetPort}`],
      resolve: async () => {
        lookups += 1;
        return [{ address: '127.0.0.1', family: 4 }];
      },
    });
    const res = await guard.safeFetch(`http://pinned.test:${targetPort}/pinned`);
    expect(await res.json()).toMatchObject({ path: '/pinned', host: `pinned.test:${targetPort}` });
    expect(lookups).toBe(1);
  });

  it('checks every redirect hop: a redirect to loopback is refused before it is followed', async () => {
    const guard = createOutboundGuard({
      allowHosts: [`127.0.0.1:${redirectorPort}`],
      resolve: async () => [{ address: '127.0.0.1', family: 4 }],
    });
    const before = targetHits;
    for (const location of [
      `http://127.0.0.1:${targetPort}/secret`,
      `https://rebound.test:${targetPort}/secret`,
      `http://localhost:${targetPort}/secret`,
    ]) {
      redirectTo = location;
      const err = await rejection(guard.safeFetch(`http://127.0.0.1:${redirectorPort}/start`));
      expect(err.code).toBe('PLX_OUTBOUND_URL_FORBIDDEN');
    }
    expect(targetHits).toBe(before);
  });

  it('follows an allowed redirect and drops credentials across origins', async () => {
    const guard = createOutboundGuard({
      allowHosts: [`127.0.0.1:${redirectorPort}`, `127.0.0.1:${targetPort}`],
    });
    redirectTo = `http://127.0.0.1:${targetPort}/landed`;
    const res = await guard.safeFetch(`http://127.0.0.1:${redirectorPort}/start`, {
      headers: { authorization: 'Bearer for-the-first-origin' },
    });
    expect(await res.json()).toMatchObject({ path: '/landed', auth: null });
    // manual: the 3xx itself
    const manual = await guard.safeFetch(`http://127.0.0.1:${redirectorPort}/start`, { redirect: 'manual' });
    expect(manual.status).toBe(302);
  });

  it('bounds the response body', async () => {
    const guard = createOutboundGuard({ allowHosts: [`127.0.0.1:${targetPort}`], maxResponseBytes: 8 });
    const res = await guard.safeFetch(`http://127.0.0.1:${targetPort}/long-enough-to-exceed`);
    await expect(res.text()).rejects.toThrow();
  });

  it('reports a closed port as a failed request', async () => {
    const closed = createServer();
    const port = await listen(closed);
    await new Promise((r) => closed.close(r));
    const guard = createOutboundGuard({ allowHosts: [`127.0.0.1:${port}`] });
    const err = await rejection(guard.safeFetch(`http://127.0.0.1:${port}/`));
    expect(err.code).toBe('PLX_OUTBOUND_REQUEST_FAILED');
    expect(err.message).toBe('Outbound request failed');
  });
});
