import type { LogEvent, OperationNode } from 'kysely';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics with the names of seed 003. Tenant ids are never labels:
 * with thousands of tenants they would explode the series count.
 */
export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  dbQueryDuration: Histogram<'operation' | 'table'>;
  eventsPublished: Counter<'event_type'>;
  onQuery(event: LogEvent): void;
}

export function createMetrics(gauges: {
  activeTenants: () => Promise<number>;
  activePlugins: () => Promise<number>;
}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const dbQueryDuration = new Histogram({
    name: 'db_query_duration_seconds',
    help: 'Database query duration',
    labelNames: ['operation', 'table'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  new Gauge({
    name: 'active_tenants',
    help: 'Tenants whose status is active',
    registers: [registry],
    async collect() {
      this.set(await gauges.activeTenants());
    },
  });
  new Gauge({
    name: 'active_plugins',
    help: 'Plugins whose status is active',
    registers: [registry],
    async collect() {
      this.set(await gauges.activePlugins());
    },
  });
  return {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    dbQueryDuration,
    eventsPublished: new Counter({
      name: 'events_published_total',
      help: 'Events published',
      labelNames: ['event_type'] as const,
      registers: [registry],
    }),
    onQuery(event) {
      const { operation, table } = describeQuery(event.query.query);
      dbQueryDuration.observe({ operation, table }, event.queryDurationMillis / 1000);
    },
  };
}

interface NodeLike {
  kind: string;
  table?: NodeLike;
  node?: NodeLike;
  into?: NodeLike;
  from?: { froms: NodeLike[] };
  identifier?: { name: string };
}

const OPERATIONS: Record<string, string> = {
  SelectQueryNode: 'select',
  InsertQueryNode: 'insert',
  UpdateQueryNode: 'update',
  DeleteQueryNode: 'delete',
};

function tableName(node: NodeLike | undefined): string {
  if (!node) return 'none';
  if (node.kind === 'AliasNode') return tableName(node.node);
  if (node.kind === 'TableNode') return node.table?.identifier?.name ?? 'unknown';
  return 'unknown';
}

/** Operation and first table of a Kysely query tree; raw SQL is reported as `raw`. */
export function describeQuery(root: OperationNode): { operation: string; table: string } {
  const node = root as unknown as NodeLike;
  const operation = OPERATIONS[node.kind] ?? 'raw';
  if (operation === 'raw') return { operation, table: 'none' };
  const target =
    node.kind === 'InsertQueryNode'
      ? node.into
      : node.kind === 'UpdateQueryNode'
        ? node.table
        : node.from?.froms[0];
  return { operation, table: tableName(target) };
}
