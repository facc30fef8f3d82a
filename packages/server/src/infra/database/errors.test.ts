import { describe, expect, it } from 'vitest';
import { PlexicaError } from '../errors.js';
import { translateDatabaseError } from './errors.js';

const pgError = (code: string, message = 'error') => Object.assign(new Error(message), { code });

describe('database errors as Plexica errors (issue 11 items 3, 7)', () => {
  it('a full disk (SQLSTATE 53100) is PLX_DISK_FULL, kind insufficient_storage (507)', () => {
    const err = translateDatabaseError(
      pgError('53100', 'could not extend file "base/5/16384": No space left on device'),
    );
    expect(err).toBeInstanceOf(PlexicaError);
    expect(err).toMatchObject({ code: 'PLX_DISK_FULL', kind: 'insufficient_storage' });
  });

  it('timeouts and lost connections are PLX_DATABASE_UNAVAILABLE with a Retry-After', () => {
    for (const err of [
      new Error('timeout exceeded when trying to connect'),
      new Error('Query read timeout'),
      new Error('Connection terminated unexpectedly'),
      pgError('57014', 'canceling statement due to statement timeout'),
      pgError('ECONNREFUSED'),
      pgError('53300', 'sorry, too many clients already'),
    ]) {
      expect(translateDatabaseError(err)).toMatchObject({
        code: 'PLX_DATABASE_UNAVAILABLE',
        extra: { retryAfter: 5 },
      });
    }
  });

  it('leaves other errors as they are (they become 500s)', () => {
    const other = pgError('42P01', 'relation does not exist');
    expect(translateDatabaseError(other)).toBe(other);
  });
});
