import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { STATUS_BY_KIND } from '../http/problem.js';
import { ERROR_CODES } from './errors.js';

const srcRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const docPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../docs/errors.md');

/** `| \`PLX_X\` | 404 | meaning |` rows of docs/errors.md. */
function documentedCodes(): Map<string, number> {
  const rows = new Map<string, number>();
  for (const line of readFileSync(docPath, 'utf8').split('\n')) {
    const match = /^\|\s*`(PLX_[A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|/.exec(line);
    if (match) rows.set(match[1]!, Number(match[2]));
  }
  return rows;
}

describe('error catalogue', () => {
  const documented = documentedCodes();

  it('documents every code with its HTTP status', () => {
    const missing = Object.keys(ERROR_CODES).filter((code) => !documented.has(code));
    expect(missing, 'codes missing from docs/errors.md').toEqual([]);
    for (const [code, { kind }] of Object.entries(ERROR_CODES)) {
      expect(documented.get(code), code).toBe(STATUS_BY_KIND[kind]);
    }
  });

  it('documents no code that does not exist', () => {
    const unknown = [...documented.keys()].filter((code) => !(code in ERROR_CODES));
    expect(unknown, 'codes in docs/errors.md that the code base does not have').toEqual([]);
  });

  it('throws every code somewhere: a documented code nothing produces is a promise, not an error', () => {
    const sources = readdirSync(srcRoot, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && file !== 'infra/errors.ts')
      .map((file) => readFileSync(path.join(srcRoot, file), 'utf8'))
      .join('\n');
    const unused = Object.keys(ERROR_CODES).filter((code) => !sources.includes(`'${code}'`));
    expect(unused, 'catalogue codes no source file throws').toEqual([]);
  });

  it('uses only PLX_ codes in upper snake case', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(code).toMatch(/^PLX_[A-Z0-9_]+$/);
  });
});
