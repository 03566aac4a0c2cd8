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
    '0005_leads': {
      // Lead-form submissions (patient contact data stays in the database, as for appointments) and
      // what a lead's slot search needs: the services each practitioner offers and their working hours.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('practitioner').addColumn('services', 'text', (c) => c.notNull().defaultTo('[]')).execute();
        await db.schema.alterTable('practitioner').addColumn('hours', 'text').execute();
        await db.schema.createTable('lead')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('clinic_id', 'text', (c) => c.notNull())
          .addColumn('connection_id', 'text', (c) => c.notNull())
          .addColumn('platform', 'text', (c) => c.notNull())
          .addColumn('submission_id', 'text', (c) => c.notNull())
          .addColumn('delivery_row_id', 'text')
          .addColumn('submitted_at', 'text', (c) => c.notNull())
          .addColumn('received_at', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('appointment_id', 'text')
          .addColumn('patient_name', 'text', (c) => c.notNull())
          .addColumn('patient_email', 'text')
          .addColumn('patient_phone', 'text')
          .addColumn('service_text', 'text')
          .addColumn('service_id', 'text')
          .addColumn('practitioner_text', 'text')
          .addColumn('practitioner_id', 'text')
          .addColumn('preferences', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('notes', 'text')
          .addColumn('triage_reason', 'text')
          .addColumn('decided_by', 'text')
          .addColumn('decision_reason', 'text')
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('lead_submission').unique().on('lead').columns(['connection_id', 'submission_id']).execute();
        await db.schema.createIndex('lead_status').on('lead').columns(['status', 'received_at']).execute();
      },
    },
    '0006_staff_users': {
      // Staff accounts for the web app (scrypt password hashes) and their sessions (only a SHA-256 of the
      // session token is stored, so a copied database gives no live session).
      async up(db: Kysely<any>) {
        await db.schema.createTable('staff_user')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('email', 'text', (c) => c.notNull().unique())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('practitioner_id', 'text')
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createTable('staff_session')
          .addColumn('token_hash', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('csrf', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('staff_session_user').on('staff_session').column('user_id').execute();
      },
    },
    '0007_outbound_deliveries': {
      // Outbound webhook deliveries: one row per (subscription, event), the log staff read and replay.
      // `data` holds ids, times and statuses only; patient contact data is read at send time, never stored here.
      async up(db: Kysely<any>) {
        await db.schema.createTable('outbound_delivery')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('connection_id', 'text', (c) => c.notNull())
          .addColumn('event_type', 'text', (c) => c.notNull())
          .addColumn('entity_type', 'text', (c) => c.notNull())
          .addColumn('entity_id', 'text', (c) => c.notNull())
          .addColumn('occurred_at', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('response_code', 'integer')
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('delivered_at', 'text')
          .execute();
        await db.schema.createIndex('outbound_delivery_connection').on('outbound_delivery').columns(['connection_id', 'created_at']).execute();
        await db.schema.createIndex('outbound_delivery_status').on('outbound_delivery').columns(['status', 'created_at']).execute();
        await db.schema.createIndex('outbound_delivery_entity').on('outbound_delivery').columns(['entity_id']).execute();
      },
    },
    '0008_notifications': {
      // Messages to patients, practitioners and staff (sent or suppressed, with the provider's id and the
      // delivery status it reports), what each audience was last told of an appointment (so a burst of
      // changes becomes one notice with the difference), and opt-outs keyed by e-mail address or phone.
      async up(db: Kysely<any>) {
        await db.schema.createTable('notification')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('clinic_id', 'text', (c) => c.notNull())
          .addColumn('appointment_id', 'text')
          .addColumn('audience', 'text', (c) => c.notNull())
          .addColumn('purpose', 'text', (c) => c.notNull())
          .addColumn('connection_id', 'text')
          .addColumn('channel', 'text')
          .addColumn('address', 'text')
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('provider_id', 'text')
          .addColumn('delivery_status', 'text')
          .addColumn('sequence', 'integer')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('notification_appointment').on('notification').columns(['appointment_id', 'created_at']).execute();
        await db.schema.createIndex('notification_provider').on('notification').columns(['provider_id']).execute();
        await db.schema.createIndex('notification_address').on('notification').columns(['address', 'created_at']).execute();
        await db.schema.createTable('notify_told')
          .addColumn('appointment_id', 'text', (c) => c.notNull())
          .addColumn('audience', 'text', (c) => c.notNull())
          .addColumn('told', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('notify_told_pk', ['appointment_id', 'audience'])
          .execute();
        await db.schema.createTable('notify_optout')
          .addColumn('address', 'text', (c) => c.primaryKey())
          .addColumn('channel', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0009_audit_erasable': {
      // The salts of the digests that the audit chain covers instead of personal values (store/audit.ts),
      // so a patient's data can be erased from old entries while `audit verify` still passes.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('audit').addColumn('pii', 'text').execute();
      },
    },
    '0010_delivery_bookings': {
      // The bookings a delivery is about (`|id|id|`), so a staff edit finds the stored deliveries about
      // its booking that wait in the inbox without reading their bodies.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('delivery').addColumn('external_ids', 'text').execute();
      },
    },
    '0011_job_connection': {
      // The connection a job acts for, so a connection's jobs are found by index (health, re-running the jobs
      // that waited for its credentials) instead of by matching text in every payload. Rows written before
      // are filled from their payload (`targetId` for calendar and CRM writes, `connectionId` otherwise), in
      // batches read and written through the query builder: the same code on both databases.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('job').addColumn('connection_id', 'text').execute();
        await db.schema.createIndex('job_connection').on('job').columns(['connection_id', 'state']).execute();
        let after = '';
        for (;;) {
          const rows: { id: string; payload: string }[] = await db.selectFrom('job').select(['id', 'payload']).where('id', '>', after).orderBy('id').limit(500).execute();
          if (!rows.length) break;
          const byConnection = new Map<string, string[]>();
          for (const r of rows) {
            let p: Record<string, unknown> = {};
            try {
              p = JSON.parse(r.payload) ?? {};
            } catch {
              // A payload that cannot be read names no connection.
            }
            const c = p.targetId ?? p.connectionId;
            if (typeof c === 'string') byConnection.set(c, [...(byConnection.get(c) ?? []), r.id]);
          }
          for (const [c, ids] of byConnection) await db.updateTable('job').set({ connection_id: c }).where('id', 'in', ids).execute();
          after = rows[rows.length - 1].id;
        }
      },
    },
    '0012_lead_limits': {
      // The address a lead form was posted from, so one client's requests per day can be limited.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('lead').addColumn('client_address', 'text').execute();
      },
    },
    '0013_retention': {
      // Retention pruning (store/retention.ts) finds old finished rows by their state and age: indexes so
      // that each batch reads only the rows it deletes (deliveries have one already: status, received_at).
      async up(db: Kysely<any>) {
        await db.schema.createIndex('job_finished').on('job').columns(['state', 'updated_at']).execute();
        await db.schema.createIndex('notification_state').on('notification').columns(['state', 'updated_at']).execute();
        await db.schema.createIndex('lead_status_updated').on('lead').columns(['status', 'updated_at']).execute();
      },
    },
    '0014_connect': {
      // Connecting a clinic from the web app (issue 17). `provisioned_by`: the configuration file that declares
      // a row (null: made in the app), so the app shows it read-only and an apply of the file touches only its
      // own rows. OAuth clients set once per provider by the owner; the state of each authorisation under way
      // (bound to the signed-in session, single use); the webhook subscription Meridian made for a connection.
      async up(db: Kysely<any>) {
        for (const t of ['clinic', 'location', 'room', 'service', 'practitioner', 'connection']) {
          await db.schema.alterTable(t).addColumn('provisioned_by', 'text').execute();
        }
        // Rows that exist already came from a configuration file (the only way to make them before 0014).
        for (const t of ['clinic', 'location', 'room', 'service', 'practitioner', 'connection']) {
          await db.updateTable(t).set({ provisioned_by: 'a configuration file' }).execute();
        }
        await db.schema.createTable('oauth_client')
          .addColumn('platform', 'text', (c) => c.primaryKey())
          .addColumn('client_id', 'text', (c) => c.notNull())
          .addColumn('secret_enc', 'text')
          .addColumn('settings', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createTable('oauth_state')
          .addColumn('state_hash', 'text', (c) => c.primaryKey())
          .addColumn('session_hash', 'text', (c) => c.notNull())
          .addColumn('platform', 'text', (c) => c.notNull())
          .addColumn('connection_id', 'text', (c) => c.notNull())
          .addColumn('variant', 'text', (c) => c.notNull())
          .addColumn('secret_enc', 'text', (c) => c.notNull())
          .addColumn('redirect_uri', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('used_at', 'text')
          .execute();
        await db.schema.createTable('webhook_subscription')
          .addColumn('connection_id', 'text', (c) => c.primaryKey())
          .addColumn('remote_id', 'text')
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0015_push': {
      // Calendar push (issue 18): one row per channel a calendar keeps to notify Meridian of changes (Google
      // events.watch, Graph subscriptions). `id` is the id notifications carry; the secret they carry back is kept
      // only as its SHA-256 (`token_hash`, compared in constant time); `last_message` refuses replayed notices.
      async up(db: Kysely<any>) {
        await db.schema.createTable('push_channel')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('connection_id', 'text', (c) => c.notNull())
          .addColumn('calendar_id', 'text', (c) => c.notNull())
          .addColumn('resource_id', 'text')
          .addColumn('token_hash', 'text', (c) => c.notNull())
          .addColumn('address', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('last_message', 'integer')
          .addColumn('last_notice_at', 'text')
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('push_channel_connection').on('push_channel').columns(['connection_id', 'state']).execute();
      },
    },
  };
}