import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';
import { SEARCH_LANGUAGES } from './config.js';

/**
 * pg_trgm (typo tolerance) and unaccent exist in PostgreSQL's contrib and in PGlite (loaded
 * by the embedded worker). One text search configuration per language, `core.plx_<language>`:
 * unaccent first, then the language's stemmer, so `Élodie` and `elodie` are one lexeme.
 */
export const searchCoreMigrations: Migration[] = [
  {
    id: 'search/0001_text_search',
    async up(db) {
      await sql`create extension if not exists pg_trgm`.execute(db);
      await sql`create extension if not exists unaccent`.execute(db);
      for (const language of SEARCH_LANGUAGES) {
        const name = sql.id('core', `plx_${language}`);
        const stem = language === 'simple' ? sql.raw('simple') : sql.raw(`${language}_stem`);
        await sql`create text search configuration ${name} (copy = ${sql.raw(language === 'simple' ? 'simple' : language)})`.execute(
          db,
        );
        await sql`alter text search configuration ${name}
          alter mapping for hword, hword_part, word, asciiword, asciihword, hword_asciipart with unaccent, ${stem}`.execute(
          db,
        );
      }
    },
  },
];

/** Documents, type state, vocabulary (for typo tolerance) and settings in every tenant schema. */
export const searchTenantMigrations: Migration[] = [
  {
    id: 'search/0001_documents',
    async up(db, schema) {
      await sql`create table ${sql.id(schema, 'search_settings')} (
        id boolean primary key default true check (id),
        language text not null
      )`.execute(db);
      await sql`create table ${sql.id(schema, 'search_types')} (
        type text primary key,
        source text not null check (source in ('api', 'code')),
        definition jsonb not null,
        generation integer not null default 1,
        building_generation integer,
        language text not null,
        updated_at timestamptz not null default now()
      )`.execute(db);
      // identity is (type, id) per generation: a reindex builds generation n+1 beside n
      await sql`create table ${sql.id(schema, 'search_documents')} (
        type text not null,
        id text not null,
        generation integer not null,
        title text not null,
        body text,
        fields jsonb not null default '{}',
        tags text[] not null default '{}',
        access text[],
        updated_at timestamptz not null,
        title_tsv tsvector not null,
        tsv tsvector not null,
        primary key (type, generation, id)
      )`.execute(db);
      const docs = sql.id(schema, 'search_documents');
      await sql`create index search_documents_tsv on ${docs} using gin (tsv)`.execute(db);
      await sql`create index search_documents_title_tsv on ${docs} using gin (title_tsv)`.execute(db);
      await sql`create index search_documents_fields on ${docs} using gin (fields jsonb_path_ops)`.execute(
        db,
      );
      // the tenant's own vocabulary (titles, fields, tags): typo candidates by trigram distance
      await sql`create table ${sql.id(schema, 'search_words')} (word text primary key)`.execute(db);
      await sql`create index search_words_trgm on ${sql.id(schema, 'search_words')} using gist (word gist_trgm_ops)`.execute(
        db,
      );
    },
  },
];
