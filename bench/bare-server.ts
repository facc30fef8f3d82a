import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import { generateKeyPair, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import pg from 'pg';
import { createScratchDatabase } from '../packages/server/test/scratch-database.js';
import { PG_ADMIN_URL } from './lib.js';

/**
 * The reference of issue 12: a bare Fastify 5 server that does what an
 * authenticated request minimally must. It verifies an EdDSA JWT (remembering
 * tokens that verified, as Plexica does) and reads one row by primary key through
 * `pg` (unnamed statements, pool of 10) on PostgreSQL. Routes: a read (`/items/:id`),
 * an insert (`POST /jobs`), and an HMAC-checked URL (`/signed/:id`), each doing
 * one database round trip.
 */
export async function startBareServer() {
  const scratch = await createScratchDatabase(PG_ADMIN_URL, 'plx_bare');
  const pool = new pg.Pool({ connectionString: scratch.url, max: 10 });
  // an idle connection ended from outside (another engineer's test on the shared server) is replaced
  pool.on('error', () => undefined);
  await pool.query(`create table items (id uuid primary key, email text not null, display_name text,
    roles jsonb not null, status text not null, created_at timestamptz not null default now())`);
  await pool.query(`create table jobs (id uuid primary key default gen_random_uuid(), type text not null,
    data jsonb not null, run_at timestamptz not null, created_at timestamptz not null default now())`);
  const id = randomUUID();
  await pool.query(
    `insert into items (id, email, display_name, roles, status) values ($1, $2, $3, $4, 'active')`,
    [id, 'seed@bare.test', 'Seed', JSON.stringify(['tenant_admin'])],
  );
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const token = await new SignJWT({ sid: randomUUID() })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' })
    .setSubject(id)
    .setIssuer('bare')
    .setAudience('bare')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(privateKey);
  const verified = new Map<string, JWTPayload>();
  const hmacKey = Buffer.alloc(32, 3);
  const sign = (path: string, expires: number) =>
    createHmac('sha256', hmacKey).update(`${path}\n${expires}`).digest('base64url');

  const server = Fastify({ logger: false });
  server.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/signed/')) return;
    const header = request.headers.authorization ?? '';
    const bearer = header.slice(7);
    let claims = verified.get(bearer);
    if (!claims || (claims.exp ?? 0) * 1000 <= Date.now()) {
      try {
        claims = (await jwtVerify(bearer, publicKey, { issuer: 'bare', audience: 'bare' })).payload;
      } catch {
        return reply.code(401).send({ error: 'unauthenticated' });
      }
      verified.set(bearer, claims);
    }
  });
  server.get<{ Params: { id: string } }>('/items/:id', async (request, reply) => {
    const { rows } = await pool.query('select * from items where id = $1', [request.params.id]);
    if (!rows[0]) return reply.code(404).send({ error: 'not found' });
    return rows[0];
  });
  server.post<{ Body: { type: string; data?: unknown; runAt?: string } }>('/jobs', async (request, reply) => {
    const { rows } = await pool.query(
      'insert into jobs (type, data, run_at) values ($1, $2, $3) returning id, type, run_at',
      [request.body.type, JSON.stringify(request.body.data ?? {}), request.body.runAt ?? new Date()],
    );
    return reply.code(201).send(rows[0]);
  });
  server.get<{ Params: { id: string }; Querystring: { expires: string; signature: string } }>(
    '/signed/:id',
    async (request, reply) => {
      const { expires, signature } = request.query;
      const expected = Buffer.from(sign(request.params.id, Number(expires)));
      const given = Buffer.from(signature ?? '');
      if (
        given.length !== expected.length ||
        !timingSafeEqual(given, expected) ||
        Number(expires) * 1000 < Date.now()
      )
        return reply.code(403).send({ error: 'bad signature' });
      const { rows } = await pool.query('select email from items where id = $1', [request.params.id]);
      return reply.type('text/plain').send(`${rows[0]?.email ?? ''}\n`);
    },
  );
  const url = await server.listen({ port: 0, host: '127.0.0.1' });
  const expires = Math.floor(Date.now() / 1000) + 3600;
  return {
    url,
    token,
    itemPath: `/items/${id}`,
    signedPath: `/signed/${id}?expires=${expires}&signature=${sign(id, expires)}`,
    async close() {
      await server.close();
      await pool.end();
      await scratch.drop();
    },
  };
}
