import { Type } from '@sinclair/typebox';
import { IdParams, JsonData, Page, Paging, pageOf, responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import type { JobSchedulesService } from './schedules.js';
import type { JobQueueService } from './service.js';

const Status = Type.Union(
  ['pending', 'running', 'completed', 'failed', 'cancelled'].map((s) => Type.Literal(s)),
);
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });

const JobSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    type: Type.String(),
    status: Status,
    dead: Type.Boolean({ description: 'failed after its last attempt; POST …/retry re-drives it' }),
    progress: Type.Integer({ minimum: 0, maximum: 100 }),
    attempts: Type.Integer(),
    maxAttempts: Type.Integer(),
    priority: Type.Integer(),
    lastError: Nullable(Type.String()),
    data: Type.Unknown(),
    result: Type.Unknown(),
    traceId: Nullable(Type.String()),
    idempotencyKey: Nullable(Type.String()),
    runAt: DateTime,
    createdAt: DateTime,
    startedAt: Nullable(DateTime),
    finishedAt: Nullable(DateTime),
    updatedAt: DateTime,
  },
  { $id: 'Job' },
);
const JobRef = Type.Ref('Job');

const EnqueueBody = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 100 }),
    data: Type.Optional(JsonData()),
    runAt: Type.Optional(Type.String({ format: 'date-time', description: 'not before this time' })),
    priority: Type.Optional(Type.Integer({ minimum: -100, maximum: 100, description: 'higher runs first' })),
    idempotencyKey: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'the same key returns the first job' }),
    ),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
);

/** Job routes of seed 000 §8 (enqueue, status, cancel) plus list, bulk, retry and types. */
export async function jobRoutes(
  server: Server,
  deps: { jobs: JobQueueService; schedules: JobSchedulesService },
): Promise<void> {
  const { jobs, schedules } = deps;
  server.addSchema(JobSchema);
  const tags = ['jobs'];

  server.post(
    '/api/v1/jobs',
    {
      config: { permission: 'jobs:job:create', idempotent: true },
      schema: {
        tags,
        summary: 'Enqueue a job in the caller’s tenant',
        body: EnqueueBody,
        response: responses({ 201: JobRef }),
      },
    },
    async (request, reply) => reply.code(201).send(await jobs.enqueue(request.ctx, request.body)),
  );

  server.post(
    '/api/v1/jobs/bulk',
    {
      config: { permission: 'jobs:job:create', idempotent: true },
      schema: {
        tags,
        summary: 'Enqueue many jobs at once (all or none)',
        body: Type.Object(
          { jobs: Type.Array(EnqueueBody, { minItems: 1, maxItems: 1000 }) },
          { additionalProperties: false },
        ),
        response: responses({ 201: Type.Object({ items: Type.Array(JobRef) }) }),
      },
    },
    async (request, reply) =>
      reply.code(201).send({ items: await jobs.enqueueBulk(request.ctx, request.body.jobs) }),
  );

  server.get(
    '/api/v1/jobs',
    {
      config: { permission: 'jobs:job:read' },
      schema: {
        tags,
        summary: "The tenant's jobs, newest first, filtered by status, type or dead-letter state",
        querystring: Type.Object(
          {
            ...Paging,
            status: Type.Optional(Status),
            type: Type.Optional(Type.String({ maxLength: 100 })),
            dead: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Page(JobRef) }),
      },
    },
    async (request) => {
      const page = pageOf(request.query);
      const { items, total } = await jobs.list(request.ctx, { ...request.query, ...page });
      return { items, total, ...page };
    },
  );

  server.get(
    '/api/v1/jobs/types',
    {
      config: { permission: 'jobs:job:read' },
      schema: {
        tags,
        summary: 'Registered job types',
        response: responses({ 200: Type.Array(Type.String()) }),
      },
    },
    async () => jobs.types(),
  );

  for (const url of ['/api/v1/jobs/:id', '/api/v1/jobs/:id/status']) {
    server.get(
      url,
      {
        config: { permission: 'jobs:job:read' },
        schema: {
          tags,
          summary: 'A job’s status: state, attempts, last error, progress, timestamps',
          params: IdParams,
          response: responses({ 200: JobRef }),
        },
      },
      async (request) => jobs.getStatus(request.ctx, request.params.id),
    );
  }

  server.delete(
    '/api/v1/jobs/:id',
    {
      config: { permission: 'jobs:job:cancel' },
      schema: {
        tags,
        summary: 'Cancel a pending or running job',
        params: IdParams,
        response: responses({ 200: JobRef }),
      },
    },
    async (request) => jobs.cancel(request.ctx, request.params.id),
  );

  server.post(
    '/api/v1/jobs/:id/retry',
    {
      config: { permission: 'jobs:job:retry' },
      schema: {
        tags,
        summary: 'Run a failed or cancelled job again from its first attempt',
        params: IdParams,
        response: responses({ 200: JobRef }),
      },
    },
    async (request) => jobs.retry(request.ctx, request.params.id),
  );

  server.addSchema(ScheduleSchema);
  const ScheduleRef = Type.Ref('JobSchedule');
  server.post(
    '/api/v1/jobs/schedule',
    {
      config: { permission: 'jobs:schedule:manage', idempotent: true },
      schema: {
        tags,
        summary: 'Run a job on a cron schedule (one run per tick across all schedulers)',
        body: Type.Object(
          {
            type: Type.String({ minLength: 1, maxLength: 100 }),
            cron: Type.String({
              minLength: 1,
              maxLength: 200,
              description: '5 or 6 fields (seconds first), or @hourly, @daily, @weekly, @monthly, @yearly',
            }),
            timezone: Type.Optional(
              Type.String({ maxLength: 100, description: 'IANA zone, e.g. Europe/Paris' }),
            ),
            data: Type.Optional(JsonData()),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: ScheduleRef }),
      },
    },
    async (request, reply) => reply.code(201).send(await schedules.create(request.ctx, request.body)),
  );
  // `/job-schedules`: under `/jobs/` the schedule ids were ambiguous with job ids
  // (`/jobs/schedules/status` matches `/jobs/{id}/status`); the old paths stay, undocumented
  for (const [base, hide] of [
    ['/api/v1/job-schedules', false],
    ['/api/v1/jobs/schedules', true],
  ] as const) {
    server.get(
      base,
      {
        config: { permission: 'jobs:job:read' },
        schema: {
          tags,
          hide,
          summary: "The tenant's cron schedules",
          response: responses({ 200: Type.Array(ScheduleRef) }),
        },
      },
      async (request) => schedules.list(request.ctx),
    );
    server.patch(
      `${base}/:id`,
      {
        config: { permission: 'jobs:schedule:manage' },
        schema: {
          tags,
          hide,
          summary: 'Pause or resume a schedule',
          params: IdParams,
          body: Type.Object({ paused: Type.Boolean() }, { additionalProperties: false }),
          response: responses({ 200: ScheduleRef }),
        },
      },
      async (request) => schedules.setPaused(request.ctx, request.params.id, request.body.paused),
    );
    server.delete(
      `${base}/:id`,
      {
        config: { permission: 'jobs:schedule:manage' },
        schema: {
          tags,
          hide,
          summary: 'Delete a schedule',
          params: IdParams,
          response: responses({ 204: Type.Null() }),
        },
      },
      async (request, reply) => {
        await schedules.remove(request.ctx, request.params.id);
        return reply.code(204).send(null);
      },
    );
  }
}

const ScheduleSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    type: Type.String(),
    cron: Type.String(),
    timezone: Nullable(Type.String()),
    data: Type.Unknown(),
    paused: Type.Boolean(),
    nextRunAt: DateTime,
    lastRunAt: Nullable(DateTime),
    lastJobId: Nullable(Type.String()),
    createdAt: DateTime,
  },
  { $id: 'JobSchedule' },
);
