import type { Generated } from 'kysely';
import type { Timestamp } from '../../infra/database/columns.js';

export interface SecretsTable {
  id: Generated<string>;
  tenant_id: string | null;
  name: string;
  key_id: string;
  wrapped_key: string;
  ciphertext: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SecretsTables {
  'core.secrets': SecretsTable;
}
