import type { ColumnType } from 'kysely';

/** A registered type's state in the tenant: its definition when registered over the API, its generations. */
export interface SearchTypesTable {
  type: string;
  /** `api` (this tenant registered it) or `code` (a module did: only the state row lives here). */
  source: 'api' | 'code';
  definition: ColumnType<unknown, string, string>;
  /** The generation searches read. */
  generation: ColumnType<number, number | undefined, number>;
  /** The generation a reindex is building, null when none runs. */
  building_generation: number | null;
  /** The text search language the active generation was built with. */
  language: string;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface SearchDocumentsTable {
  type: string;
  id: string;
  generation: number;
  title: string;
  body: string | null;
  fields: ColumnType<unknown, string, string>;
  tags: string[];
  /** `role:<name>` and `user:<id>` tokens; null = every caller who may read the type. */
  access: string[] | null;
  updated_at: ColumnType<Date, Date | string, Date | string>;
}

export interface SearchSettingsTable {
  id: ColumnType<boolean, boolean | undefined, never>;
  language: string;
}

/** The search module's tables in each `tenant_{slug}` schema (tsvector columns are written in SQL only). */
export interface SearchTenantTables {
  search_types: SearchTypesTable;
  search_documents: SearchDocumentsTable;
  search_settings: SearchSettingsTable;
}
