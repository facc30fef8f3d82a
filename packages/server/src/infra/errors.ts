/**
 * Error kinds say what went wrong without saying anything about HTTP; the HTTP
 * layer maps them to status codes in one place (`http/problem.ts`).
 */
export type ErrorKind =
  | 'invalid'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'unprocessable'
  | 'gone'
  | 'too_large'
  | 'unsupported_media'
  | 'too_long'
  | 'headers_too_large'
  | 'timeout'
  | 'range_not_satisfiable'
  | 'rate_limited'
  | 'unavailable'
  | 'insufficient_storage'
  | 'internal';

/**
 * The stable error catalogue. Every code a client can see is listed here and in
 * docs/errors.md; a test fails when the two disagree.
 */
export const ERROR_CODES = {
  PLX_VALIDATION: { kind: 'invalid', title: 'Request validation failed' },
  PLX_MALFORMED_JSON: { kind: 'invalid', title: 'Request body is not valid JSON' },
  PLX_UNSUPPORTED_MEDIA_TYPE: { kind: 'unsupported_media', title: 'Unsupported content type' },
  PLX_BODY_TOO_LARGE: { kind: 'too_large', title: 'Request body too large' },
  PLX_MALFORMED_REQUEST: { kind: 'invalid', title: 'Request is not well-formed HTTP' },
  PLX_MALFORMED_URL: { kind: 'invalid', title: 'URL is not validly percent-encoded' },
  PLX_URL_TOO_LONG: { kind: 'too_long', title: 'A path parameter of the URL is too long' },
  PLX_HEADERS_TOO_LARGE: { kind: 'headers_too_large', title: 'Request headers are too large' },
  PLX_REQUEST_TIMEOUT: { kind: 'timeout', title: 'Request was not received in time' },
  PLX_ROUTE_NOT_FOUND: { kind: 'not_found', title: 'Route not found' },
  PLX_RATE_LIMITED: { kind: 'rate_limited', title: 'Too many requests' },
  PLX_AUTH_REQUIRED: { kind: 'unauthenticated', title: 'Authentication required' },
  PLX_AUTH_INVALID_CREDENTIALS: { kind: 'unauthenticated', title: 'Invalid credentials' },
  PLX_AUTH_TOKEN_INVALID: { kind: 'unauthenticated', title: 'Token is invalid' },
  PLX_AUTH_TOKEN_EXPIRED: { kind: 'unauthenticated', title: 'Token has expired' },
  PLX_AUTH_SESSION_REVOKED: { kind: 'unauthenticated', title: 'Session has been revoked' },
  PLX_AUTH_REFRESH_REUSED: { kind: 'unauthenticated', title: 'Refresh token reuse detected' },
  PLX_AUTH_API_KEY_INVALID: { kind: 'unauthenticated', title: 'API key is invalid, revoked or expired' },
  PLX_AUTH_USER_DISABLED: { kind: 'forbidden', title: 'User is disabled' },
  PLX_PERMISSION_DENIED: { kind: 'forbidden', title: 'Permission denied' },
  PLX_TENANT_HEADER_FORBIDDEN: {
    kind: 'forbidden',
    title: 'Only a super admin may act in a tenant by naming it',
  },
  PLX_TENANT_REQUIRED: { kind: 'invalid', title: 'This route needs a tenant context' },
  PLX_TENANT_NOT_FOUND: { kind: 'not_found', title: 'Tenant not found' },
  PLX_TENANT_SLUG_INVALID: { kind: 'invalid', title: 'Tenant slug is invalid' },
  PLX_TENANT_SLUG_RESERVED: { kind: 'invalid', title: 'Tenant slug is reserved' },
  PLX_TENANT_SLUG_TAKEN: { kind: 'conflict', title: 'Tenant slug is already taken' },
  PLX_TENANT_SUSPENDED: { kind: 'forbidden', title: 'Tenant is suspended' },
  PLX_TENANT_DELETED: { kind: 'gone', title: 'Tenant has been deleted' },
  PLX_TENANT_STATE_CONFLICT: { kind: 'conflict', title: 'Tenant is not in a state that allows this' },
  PLX_TENANT_PROVISIONING_FAILED: { kind: 'internal', title: 'Tenant provisioning failed' },
  PLX_USER_NOT_FOUND: { kind: 'not_found', title: 'User not found' },
  PLX_USER_EMAIL_TAKEN: { kind: 'conflict', title: 'A user with this email already exists' },
  PLX_PASSWORD_TOO_WEAK: { kind: 'invalid', title: 'Password does not meet the policy' },
  PLX_CURRENT_PASSWORD_INVALID: {
    kind: 'invalid',
    title: 'The current password given is not the current password',
  },
  PLX_PASSWORD_NOT_SET: {
    kind: 'conflict',
    title: 'This account has no password here (it signs in through its identity provider)',
  },
  PLX_SESSION_NOT_FOUND: { kind: 'not_found', title: 'Session not found' },
  PLX_API_KEY_NOT_FOUND: { kind: 'not_found', title: 'API key not found' },
  PLX_API_KEY_PERMISSION_NOT_HELD: {
    kind: 'forbidden',
    title: 'An API key cannot be given permissions its creator does not hold',
  },
  PLX_ROLE_NOT_FOUND: { kind: 'not_found', title: 'Role not found' },
  PLX_ROLE_KEY_TAKEN: { kind: 'conflict', title: 'A role with this key already exists' },
  PLX_ROLE_BUILTIN: { kind: 'forbidden', title: 'Built-in roles cannot be changed' },
  PLX_PERMISSION_UNKNOWN: { kind: 'invalid', title: 'Unknown permission key' },
  PLX_PERMISSION_CONFLICT: { kind: 'conflict', title: 'Permission key is already registered' },
  PLX_PERMISSION_NOT_HELD: {
    kind: 'forbidden',
    title: 'The caller does not hold every permission this grants or affects',
  },
  PLX_OIDC_NOT_CONFIGURED: { kind: 'not_found', title: 'No identity provider is configured' },
  // says nothing of who holds the pair (issue 9 item 13)
  PLX_OIDC_ISSUER_TAKEN: { kind: 'conflict', title: 'This issuer and audience pair is not available' },
  PLX_OIDC_DISCOVERY_FAILED: {
    kind: 'unprocessable',
    title: 'OpenID Connect discovery of the issuer failed',
  },
  PLX_OIDC_ACCOUNT_NOT_LINKED: {
    kind: 'forbidden',
    title: 'An account with this email exists and is not linked to this identity provider subject',
  },
  PLX_OIDC_EMAIL_NOT_VERIFIED: {
    kind: 'forbidden',
    title: 'The identity provider has not verified the email address of this subject',
  },
  PLX_OIDC_IDENTITY_LINKED: {
    kind: 'conflict',
    title: 'This identity provider subject is already linked to a user',
  },
  PLX_OIDC_IDENTITY_NOT_FOUND: { kind: 'not_found', title: 'Identity link not found' },
  PLX_OUTBOUND_URL_FORBIDDEN: {
    kind: 'invalid',
    title: 'URL may not be fetched by the server (https on a public host, or an allow-listed host)',
  },
  PLX_OUTBOUND_REQUEST_FAILED: { kind: 'unavailable', title: 'Outbound request failed' },
  PLX_SECRET_UNDECRYPTABLE: { kind: 'internal', title: 'Secret cannot be decrypted with the known keys' },
  PLX_DATABASE_UNAVAILABLE: { kind: 'unavailable', title: 'Database is unavailable' },
  PLX_DISK_FULL: { kind: 'insufficient_storage', title: 'No disk space is left to store this' },
  PLX_CONFLICT: { kind: 'conflict', title: 'Conflicting write' },
  PLX_IDEMPOTENCY_KEY_INVALID: { kind: 'invalid', title: 'Idempotency-Key header is malformed' },
  PLX_IDEMPOTENCY_KEY_REUSED: {
    kind: 'unprocessable',
    title: 'Idempotency-Key was already used with a different request',
  },
  PLX_IDEMPOTENCY_IN_PROGRESS: {
    kind: 'conflict',
    title: 'A request with this Idempotency-Key is still running',
  },
  PLX_STORAGE_PATH_INVALID: { kind: 'invalid', title: 'File path is invalid' },
  PLX_STORAGE_FILE_NOT_FOUND: { kind: 'not_found', title: 'File not found' },
  PLX_STORAGE_FILE_EXISTS: { kind: 'conflict', title: 'A file already exists at this path' },
  PLX_STORAGE_FILE_TOO_LARGE: { kind: 'too_large', title: "File exceeds the tenant's size limit" },
  PLX_STORAGE_QUOTA_EXCEEDED: { kind: 'too_large', title: "Upload would exceed the tenant's storage quota" },
  PLX_STORAGE_UPLOAD_INVALID: { kind: 'invalid', title: 'Upload request is malformed' },
  PLX_STORAGE_UPLOAD_INCOMPLETE: { kind: 'invalid', title: 'Upload ended before all its bytes arrived' },
  PLX_STORAGE_RANGE_NOT_SATISFIABLE: {
    kind: 'range_not_satisfiable',
    title: 'Requested range is not satisfiable',
  },
  PLX_STORAGE_SIGNATURE_INVALID: { kind: 'forbidden', title: 'Signed URL is invalid' },
  PLX_STORAGE_SIGNATURE_EXPIRED: { kind: 'forbidden', title: 'Signed URL has expired' },
  PLX_STORAGE_SIGNED_URL_STALE: {
    kind: 'gone',
    title: 'The file was replaced after this URL was signed',
  },
  PLX_STORAGE_SIGNED_URL_USED: { kind: 'gone', title: 'This one-use upload URL was already used' },
  PLX_STORAGE_CONTENT_TYPE_MISMATCH: {
    kind: 'unsupported_media',
    title: 'The upload does not carry the content type the URL was signed for',
  },
  PLX_STORAGE_BLOB_MISSING: {
    kind: 'internal',
    title: "A file's contents are missing from the storage engine",
  },
  PLX_STORAGE_UNAVAILABLE: { kind: 'unavailable', title: 'Object storage is unavailable' },
  PLX_JOB_NOT_FOUND: { kind: 'not_found', title: 'Job not found' },
  PLX_JOB_TYPE_UNKNOWN: { kind: 'invalid', title: 'Unknown job type' },
  PLX_JOB_NOT_CANCELLABLE: { kind: 'conflict', title: 'Only pending and running jobs can be cancelled' },
  PLX_JOB_NOT_RETRYABLE: { kind: 'conflict', title: 'Only failed and cancelled jobs can be retried' },
  PLX_JOB_CRON_INVALID: { kind: 'invalid', title: 'Cron expression or time zone is invalid' },
  PLX_JOB_SCHEDULE_NOT_FOUND: { kind: 'not_found', title: 'Job schedule not found' },
  PLX_JOBS_UNAVAILABLE: { kind: 'unavailable', title: 'The job engine is unavailable' },
  PLX_SEARCH_QUERY_INVALID: { kind: 'invalid', title: 'Search query is not valid' },
  PLX_SEARCH_TYPE_UNKNOWN: { kind: 'invalid', title: 'Search type is not registered' },
  PLX_SEARCH_TYPE_RESERVED: { kind: 'conflict', title: 'Search type is registered by a module' },
  PLX_SEARCH_FIELD_UNDECLARED: { kind: 'invalid', title: 'Field is not declared by the search type' },
  PLX_SEARCH_FILTER_INVALID: {
    kind: 'invalid',
    title: 'Filter or facet on a field the type does not declare',
  },
  PLX_SEARCH_CURSOR_INVALID: { kind: 'invalid', title: 'Search cursor is not valid for this query' },
  PLX_SEARCH_DOCUMENT_TOO_LARGE: { kind: 'invalid', title: 'Search document is too large' },
  PLX_SEARCH_BULK_INVALID: { kind: 'invalid', title: 'Bulk index body is not valid' },
  PLX_SEARCH_INDEX_FAILED: { kind: 'unprocessable', title: 'Document could not be indexed' },
  PLX_SEARCH_REINDEX_RUNNING: { kind: 'conflict', title: 'A reindex of this type is already running' },
  PLX_SEARCH_REINDEX_CANCELLED: { kind: 'conflict', title: 'The reindex was cancelled' },
  PLX_EVENT_TYPE_INVALID: { kind: 'invalid', title: 'Event type must be segment(.segment)+' },
  PLX_EVENT_PATTERN_INVALID: { kind: 'invalid', title: 'Topic pattern is invalid' },
  PLX_EVENT_TOO_LARGE: { kind: 'too_large', title: 'Event data is too large' },
  PLX_EVENT_TOPIC_FORBIDDEN: { kind: 'forbidden', title: 'Topic belongs to another tenant' },
  PLX_EVENT_REPLAY_FUTURE: { kind: 'invalid', title: 'A replay cannot start in the future' },
  PLX_EVENT_POSITION_UNKNOWN: { kind: 'not_found', title: 'No retained event at this position' },
  PLX_EVENT_DEAD_LETTER_NOT_FOUND: { kind: 'not_found', title: 'Dead letter not found' },
  PLX_EVENT_DEAD_LETTER_REDRIVEN: { kind: 'conflict', title: 'The dead letter was re-driven already' },
  PLX_EVENT_GROUP_NOT_FOUND: { kind: 'not_found', title: 'Consumer group not found' },
  PLX_EVENT_REPLAY_POINT_INVALID: { kind: 'invalid', title: 'A replay starts at a position or a time' },
  PLX_EVENTS_UNAVAILABLE: { kind: 'unavailable', title: 'The event engine is unavailable' },
  PLX_EVENT_FILTER_NEVER_MATCHES: { kind: 'invalid', title: 'The event filter can never match' },
  PLX_EVENT_CURSOR_INVALID: { kind: 'invalid', title: 'The paging cursor is invalid' },
  PLX_APP_NOT_FOUND: { kind: 'not_found', title: 'App not found' },
  PLX_APP_NAME_TAKEN: { kind: 'conflict', title: 'An app of this tenant already has this name' },
  PLX_APP_KEY_MISMATCH: { kind: 'forbidden', title: 'This API key belongs to another app' },
  PLX_WEBHOOK_NOT_FOUND: { kind: 'not_found', title: 'Webhook endpoint not found' },
  PLX_WEBHOOK_DELIVERY_NOT_FOUND: { kind: 'not_found', title: 'Webhook delivery not found' },
  PLX_WEBHOOK_FILTER_NEVER_MATCHES: { kind: 'invalid', title: 'The event type filter can never match' },
  PLX_WEBHOOK_RANGE_INVALID: { kind: 'invalid', title: 'The recovery range is invalid' },
  PLX_REALTIME_TICKET_INVALID: { kind: 'unauthenticated', title: 'Stream ticket is unknown or already used' },
  PLX_REALTIME_TICKET_EXPIRED: { kind: 'unauthenticated', title: 'Stream ticket has expired' },
  PLX_REALTIME_STREAM_EXPECTED: {
    kind: 'invalid',
    title: 'Open the stream as a WebSocket or with Accept: text/event-stream',
  },
  PLX_REALTIME_FRAME_INVALID: { kind: 'invalid', title: 'Stream frame is malformed' },
  PLX_REALTIME_CHANNEL_INVALID: { kind: 'invalid', title: 'Stream channel or type filter is invalid' },
  PLX_REALTIME_CHANNEL_FORBIDDEN: { kind: 'forbidden', title: 'Not allowed to join this channel' },
  PLX_REALTIME_TOO_MANY_SUBSCRIPTIONS: { kind: 'too_large', title: 'Too many subscriptions on one stream' },
  PLX_REALTIME_TOO_MANY_STREAMS: { kind: 'rate_limited', title: 'Too many open streams' },
  PLX_REALTIME_RESUME_INVALID: { kind: 'invalid', title: 'Not an event id of this stream' },
  PLX_REALTIME_RESUME_FOREIGN: {
    kind: 'forbidden',
    title: "The event id belongs to another tenant's stream",
  },
  PLX_REALTIME_SLOW_CONSUMER: {
    kind: 'unavailable',
    title: 'The client read too slowly; reconnect and resume',
  },
  PLX_REALTIME_CREDENTIAL_ENDED: {
    kind: 'unauthenticated',
    title: "The stream's credential expired or was revoked",
  },
  PLX_INTERNAL: { kind: 'internal', title: 'Internal error' },
} as const satisfies Record<string, { kind: ErrorKind; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A field-level problem, as reported by validation errors. */
export interface FieldError {
  field: string;
  message: string;
}

export interface PlexicaErrorOptions {
  detail?: string;
  errors?: FieldError[];
  cause?: unknown;
  /** Extra members written into the problem document (e.g. `retryAfter`). */
  extra?: Record<string, unknown>;
}

/**
 * The one error type services throw. `code` is stable and documented; `kind`
 * decides the HTTP status.
 *
 * @example throw new PlexicaError('PLX_TENANT_NOT_FOUND', { detail: `no tenant ${id}` })
 */
export class PlexicaError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly errors: FieldError[] | undefined;
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, options: PlexicaErrorOptions = {}) {
    super(options.detail ?? ERROR_CODES[code].title, { cause: options.cause });
    this.name = 'PlexicaError';
    this.code = code;
    this.kind = ERROR_CODES[code].kind;
    this.errors = options.errors;
    this.extra = options.extra;
  }

  get title(): string {
    return ERROR_CODES[this.code].title;
  }
}

export const isPlexicaError = (err: unknown): err is PlexicaError => err instanceof PlexicaError;
