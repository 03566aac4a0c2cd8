// One migration set for SQLite and PostgreSQL.
import { sql, type Kysely, type Migration } from 'kysely';

export type Dialect = 'sqlite' | 'postgres';

export function migrations(_d: Dialect): Record<string, Migration> {
  return {
    '0001_init': {
      async up(db: Kysely<any>) {
        const t = (name: string) => db.schema.createTable(name);
        await t('meta').addColumn('key', 'text', (c) => c.primaryKey()).addColumn('value', 'text', (c) => c.notNull()).execute();
        await t('clinic')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('time_zone', 'text', (c) => c.notNull())
          .addColumn('language', 'text', (c) => c.notNull().defaultTo('en'))
          .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await t('location')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('clinic_id', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('time_zone', 'text', (c) => c.notNull())
          .addColumn('address', 'text')
          .execute();
        await t('practitioner')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('clinic_id', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('email', 'text')
          .addColumn('time_zone', 'text')
          .addColumn('location_ids', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('targets', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
          .execute();
        await t('service')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('clinic_id', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('duration_minutes', 'integer')
          .execute();
        await t('room')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('location_id', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .execute();
        await t('appointment')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('clinic_id', 'text', (c) => c.notNull())
          .addColumn('location_id', 'text')
          .addColumn('practitioner_id', 'text', (c) => c.notNull())
          .addColumn('service_id', 'text')
          .addColumn('room_id', 'text')
          .addColumn('patient_name', 'text', (c) => c.notNull())
          .addColumn('patient_email', 'text')
          .addColumn('patient_phone', 'text')
          .addColumn('patient_tz', 'text')
          .addColumn('start_at', 'text', (c) => c.notNull())
          .addColumn('end_at', 'text', (c) => c.notNull())
          .addColumn('time_zone', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('notes', 'text')
          .addColumn('origin_platform', 'text', (c) => c.notNull())
          .addColumn('origin_connection_id', 'text', (c) => c.notNull())
          .addColumn('origin_external_id', 'text', (c) => c.notNull())
          .addColumn('revision', 'integer', (c) => c.notNull())
          .addColumn('conflicts', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('appointment_practitioner_start').on('appointment').columns(['practitioner_id', 'start_at']).execute();
        await db.schema.createIndex('appointment_start').on('appointment').columns(['start_at']).execute();
        await db.schema.createIndex('appointment_room_start').on('appointment').columns(['room_id', 'start_at']).execute();
        await t('appointment_ref')
          .addColumn('connection_id', 'text', (c) => c.notNull())
          .addColumn('external_id', 'text', (c) => c.notNull())
          .addColumn('appointment_id', 'text')
          .addColumn('superseded', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_occurred_at', 'text')
          .addColumn('last_version', 'bigint')
          .addColumn('last_hash', 'text')
          .addColumn('last_kind', 'text')
          .addPrimaryKeyConstraint('appointment_ref_pk', ['connection_id', 'external_id'])
          .execute();
        await db.schema.createIndex('appointment_ref_appointment').on('appointment_ref').column('appointment_id').execute();
        await t('connection')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('clinic_id', 'text', (c) => c.notNull())
          .addColumn('platform', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('config', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('refs', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('privacy', 'text')
          .addColumn('base_url', 'text')
          .addColumn('secrets_enc', 'text')
          .addColumn('secret_refs', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
          .addColumn('last_sync_at', 'text')
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await t('delivery')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('connection_id', 'text', (c) => c.notNull())
          .addColumn('delivery_id', 'text')
          .addColumn('received_at', 'text', (c) => c.notNull())
          .addColumn('content_type', 'text')
          .addColumn('headers', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('error', 'text')
          .addColumn('change_count', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('applied_at', 'text')
          .execute();
        await db.schema.createIndex('delivery_unique').unique().on('delivery').columns(['connection_id', 'delivery_id']).execute();
        await db.schema.createIndex('delivery_status').on('delivery').columns(['status', 'received_at']).execute();
        await t('job')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('dedupe_key', 'text')
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('max_attempts', 'integer', (c) => c.notNull())
          .addColumn('run_at', 'text', (c) => c.notNull())
          .addColumn('locked_by', 'text')
          .addColumn('locked_until', 'text')
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('job_due').on('job').columns(['state', 'run_at']).execute();
        // At most one pending job per key: a burst of changes to one appointment coalesces.
        await sql`create unique index job_pending_key on job (dedupe_key) where state = 'pending'`.execute(db);
        await t('target_link')
          .addColumn('appointment_id', 'text', (c) => c.notNull())
          .addColumn('connection_id', 'text', (c) => c.notNull())
          .addColumn('remote_id', 'text', (c) => c.notNull())
          .addColumn('calendar_id', 'text')
          .addColumn('etag', 'text')
          .addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('data', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('revision', 'integer', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('target_link_pk', ['appointment_id', 'connection_id'])
          .execute();
        await t('audit')
          .addColumn('seq', 'integer', (c) => c.primaryKey())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('entity_type', 'text', (c) => c.notNull())
          .addColumn('entity_id', 'text', (c) => c.notNull())
          .addColumn('before', 'text')
          .addColumn('after', 'text')
          .addColumn('meta', 'text')
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('audit_entity').on('audit').columns(['entity_id', 'seq']).execute();
        await db.schema.createIndex('audit_at').on('audit').columns(['at']).execute();
        await t('audit_head')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute();
        await db.insertInto('audit_head').values({ id: 1, seq: 0, hash: '0'.repeat(64) }).execute();
        await t('api_key')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('prefix', 'text', (c) => c.notNull())
          .addColumn('key_hash', 'text', (c) => c.notNull().unique())
          .addColumn('scopes', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('last_used_at', 'text')
          .addColumn('revoked', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await t('feed')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('connection_id', 'text', (c) => c.notNull())
          .addColumn('scope', 'text', (c) => c.notNull())
          .addColumn('scope_id', 'text', (c) => c.notNull())
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('token_enc', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0002_busy_blocks': {
      // Busy times read from practitioners' own calendars (events that are not ours): conflicts too.
      async up(db: Kysely<any>) {
        await db.schema.createTable('busy_block')
          .addColumn('connection_id', 'text', (c) => c.notNull())
          .addColumn('practitioner_id', 'text', (c) => c.notNull())
          .addColumn('start_at', 'text', (c) => c.notNull())
          .addColumn('end_at', 'text', (c) => c.notNull())
          .addColumn('fetched_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('busy_block_practitioner_start').on('busy_block').columns(['practitioner_id', 'start_at']).execute();
      },
    },
    '0003_source_divergence': {
      // Why a staff edit is not (yet) what the booking platform shows; null when they agree.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('appointment').addColumn('diverged', 'text').execute();
      },
    },
    '0004_poll_state': {
      // Sync cursors and a lease per polling connection (one poll at a time across processes), and the
      // mass cancellations a poll held back for staff approval.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('connection').addColumn('sync_state', 'text', (c) => c.notNull().defaultTo('{}')).execute();
        await db.schema.alterTable('connection').addColumn('poll_lease_until', 'text').execute();
        await db.schema.alterTable('connection').addColumn('poll_lease_by', 'text').execute();
        await db.schema.createTable('held_change')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('connection_id', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('summary', 'text', (c) => c.notNull())
          .addColumn('changes', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('decided_by', 'text')
          .execute();
        await db.schema.createIndex('held_change_connection').on('held_change').columns(['connection_id', 'status']).execute();
      },
    },
  };
}