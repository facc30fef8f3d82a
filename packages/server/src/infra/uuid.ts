/**
 * A UUID as PostgreSQL prints them (any version). Ids that reach a `uuid`
 * column are checked with it first: a malformed one is a 404, not a cast error.
 */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
