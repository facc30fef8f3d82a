import type { Executor } from '../../infra/database/index.js';
import type { ModuleDefinition, PlexicaModule } from '../../module.js';
import type { JobQueueService } from '../jobs/index.js';
import { type SearchConfig, searchOptions } from './config.js';
import { searchCoreMigrations, searchTenantMigrations } from './migrations.js';
import { SEARCH_PERMISSIONS } from './permissions.js';
import { searchRoutes } from './routes.js';
import { createSearchService, type SearchService } from './service.js';

export type { SearchConfig } from './config.js';
export type {
  SearchDocument,
  SearchQuery,
  SearchResult,
  SearchService,
  SearchTypeDefinition,
} from './service.js';

/** Full-text search in each tenant's schema (PostgreSQL FTS + pg_trgm), reindex as a job. */
export const searchModule: ModuleDefinition<SearchConfig> = {
  name: 'search',
  config: { options: searchOptions },
  permissions: SEARCH_PERMISSIONS,
  coreMigrations: searchCoreMigrations,
  tenantMigrations: searchTenantMigrations,
};

export function createSearchModule(deps: {
  db: Executor;
  config: SearchConfig;
  jobs: JobQueueService;
}): PlexicaModule<SearchService> {
  const service = createSearchService(deps);
  // a tenant's documents live in its schema: purging the tenant drops them with it
  return { name: 'search', service, routes: (server) => searchRoutes(server, { search: service }) };
}
