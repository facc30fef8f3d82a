import type { ColumnType, Generated } from 'kysely';
import type { Timestamp } from '../../infra/database/columns.js';

export interface FilesTable {
  path: string;
  blob_key: string;
  /** bigint: pg returns it as a string */
  size: ColumnType<string, number, number>;
  content_type: string;
  created_at: Timestamp;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface StorageUsageTable {
  id: Generated<boolean>;
  bytes: ColumnType<string, never, number>;
  objects: ColumnType<string, never, number>;
}

/** Signed PUT URLs already used (one use each), kept until they expire (0004). */
export interface SignedUploadsTable {
  id: string;
  used_at: Timestamp;
  expires_at: Date | string;
}

/** The storage module's tables in each `tenant_{slug}` schema. */
export interface StorageTenantTables {
  files: FilesTable;
  storage_usage: StorageUsageTable;
  signed_uploads: SignedUploadsTable;
}
