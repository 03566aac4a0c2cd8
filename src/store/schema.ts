// Kysely table types. Portable across SQLite and PostgreSQL: text ids, ISO-8601 UTC text instants,
// JSON as text, booleans as 0/1 integers.

/** `provisioned_by` on setup rows: the configuration file that declares the row; null when it was made in the app (0014). */
export interface ClinicTable { id: string; name: string; time_zone: string; language: string; settings: string; updated_at: string; provisioned_by?: string | null }
export interface LocationTable { id: string; clinic_id: string; name: string; time_zone: string; address: string | null; provisioned_by?: string | null }
export interface PractitionerTable {
  id: string; clinic_id: string; name: string; email: string | null; time_zone: string | null;
  location_ids: string; targets: string; active: number;
  /** JSON: service ids offered, and weekly working hours (null: the clinic's). */
  services: string; hours: string | null;
  provisioned_by?: string | null;
}
export interface ServiceTable { id: string; clinic_id: string; name: string; duration_minutes: number | null; provisioned_by?: string | null }
export interface RoomTable { id: string; location_id: string; name: string; provisioned_by?: string | null }

export interface AppointmentTable {
  id: string; clinic_id: string; location_id: string | null; practitioner_id: string; service_id: string | null;
  room_id: string | null; patient_name: string; patient_email: string | null; patient_phone: string | null;
  patient_tz: string | null; start_at: string; end_at: string; time_zone: string; status: string; notes: string | null;
  origin_platform: string; origin_connection_id: string; origin_external_id: string; revision: number;
  conflicts: string; diverged: string | null; created_at: string; updated_at: string;
}

export interface AppointmentRefTable {
  connection_id: string; external_id: string; appointment_id: string | null; superseded: number;
  last_occurred_at: string | null; last_version: number | null; last_hash: string | null; last_kind: string | null;
}

export interface ConnectionTable {
  id: string; clinic_id: string; platform: string; name: string; config: string; refs: string;
  privacy: string | null; base_url: string | null; secrets_enc: string | null; secret_refs: string;
  status: string; last_sync_at: string | null; last_error: string | null; created_at: string; updated_at: string;
  sync_state: string; poll_lease_until: string | null; poll_lease_by: string | null;
  provisioned_by?: string | null;
}

export interface HeldChangeTable {
  id: string; connection_id: string; status: string; fingerprint: string; summary: string; changes: string;
  created_at: string; updated_at: string; decided_by: string | null;
}

export interface DeliveryTable {
  id: string; connection_id: string; delivery_id: string | null; received_at: string; content_type: string | null;
  headers: string; body: string; status: string; error: string | null; change_count: number; applied_at: string | null;
  /** `|id|id|`: the bookings its changes are about (null for rows stored before 0010, and leads). */
  external_ids?: string | null;
}

export interface JobTable {
  id: string; kind: string; payload: string; dedupe_key: string | null; state: string; attempts: number;
  max_attempts: number; run_at: string; locked_by: string | null; locked_until: string | null; last_error: string | null;
  created_at: string; updated_at: string;
  /** The connection the job acts for (domain/jobs.ts `connectionOf`), or the one whose authorisation it waits on; null for neither. */
  connection_id: string | null;
}

export interface TargetLinkTable {
  appointment_id: string; connection_id: string; remote_id: string; calendar_id: string | null; etag: string | null;
  generation: number; data: string; revision: number; state: string; updated_at: string;
}

export interface AuditTable {
  seq: number; at: string; actor: string; action: string; entity_type: string; entity_id: string;
  before: string | null; after: string | null; meta: string | null; prev_hash: string; hash: string;
  /** JSON: the salt of each personal value's digest (store/audit.ts); null for entries from before 0009. */
  pii: string | null;
}
export interface AuditHeadTable { id: number; seq: number; hash: string }

export interface ApiKeyTable {
  id: string; name: string; prefix: string; key_hash: string; scopes: string; created_at: string;
  last_used_at: string | null; revoked: number;
}

export interface FeedTable {
  id: string; connection_id: string; scope: string; scope_id: string; token_hash: string; token_enc: string; created_at: string;
}

export interface LeadTable {
  id: string; clinic_id: string; connection_id: string; platform: string; submission_id: string; delivery_row_id: string | null;
  submitted_at: string; received_at: string; status: string; appointment_id: string | null;
  patient_name: string; patient_email: string | null; patient_phone: string | null;
  service_text: string | null; service_id: string | null; practitioner_text: string | null; practitioner_id: string | null;
  preferences: string; notes: string | null; triage_reason: string | null; decided_by: string | null; decision_reason: string | null;
  updated_at: string;
  /** The sender's network address (per-client limits on public forms); null before 0012 and off HTTP. */
  client_address?: string | null;
}

export interface StaffUserTable {
  id: string; email: string; name: string; role: string; practitioner_id: string | null; password_hash: string;
  disabled: number; created_at: string; updated_at: string;
}
export interface StaffSessionTable { token_hash: string; user_id: string; csrf: string; created_at: string; expires_at: string }

/** One message (or a message deliberately not sent): `state` sending | sent | suppressed | failed. */
export interface NotificationTable {
  key: string; clinic_id: string; appointment_id: string | null; audience: string; purpose: string; connection_id: string | null;
  channel: string | null; address: string | null; state: string; reason: string | null; provider_id: string | null;
  delivery_status: string | null; sequence: number | null; created_at: string; updated_at: string;
}
/** JSON `told`: what the audience was last told of the appointment (domain/notify-plan.ts Told). */
export interface NotifyToldTable { appointment_id: string; audience: string; told: string; updated_at: string }
export interface NotifyOptoutTable { address: string; channel: string; source: string; created_at: string }

/** An OAuth client (app registration) the owner set for a provider; `settings` JSON (e.g. `authBaseUrl` for a fake or a sovereign cloud). */
export interface OAuthClientTable { platform: string; client_id: string; secret_enc: string | null; settings: string; updated_at: string }
/**
 * One authorisation under way: `state` is stored hashed and bound to the signed-in session that started it; `secret_enc`
 * holds (encrypted) the PKCE verifier and what the owner typed (variant inputs, the new connection's name). Single use.
 */
export interface OAuthStateTable {
  state_hash: string; session_hash: string; platform: string; connection_id: string; variant: string; secret_enc: string;
  redirect_uri: string; created_at: string; expires_at: string; used_at: string | null;
}
/** The webhook subscription Meridian made at the platform for a connection (`remote_id` is the connector's, opaque). */
export interface WebhookSubscriptionTable {
  connection_id: string; remote_id: string | null; url: string; events: string; state: string; last_error: string | null;
  created_at: string; updated_at: string;
}

/** A push channel a calendar keeps for Meridian (0015): `state` active | stopped | failed. */
export interface PushChannelTable {
  id: string; connection_id: string; calendar_id: string; resource_id: string | null; token_hash: string; address: string;
  expires_at: string; state: string; last_message: number | null; last_notice_at: string | null; last_error: string | null;
  created_at: string; updated_at: string;
}

export interface MetaTable { key: string; value: string }
export interface BusyBlockTable { connection_id: string; practitioner_id: string; start_at: string; end_at: string; fetched_at: string }

export interface OutboundDeliveryTable {
  id: string; connection_id: string; event_type: string; entity_type: string; entity_id: string; occurred_at: string;
  /** JSON: the event's data without patient contact data. */
  data: string; status: string; attempts: number; response_code: number | null; last_error: string | null;
  created_at: string; updated_at: string; delivered_at: string | null;
}

export interface DB {
  clinic: ClinicTable;
  location: LocationTable;
  practitioner: PractitionerTable;
  service: ServiceTable;
  room: RoomTable;
  appointment: AppointmentTable;
  held_change: HeldChangeTable;
  appointment_ref: AppointmentRefTable;
  connection: ConnectionTable;
  delivery: DeliveryTable;
  job: JobTable;
  target_link: TargetLinkTable;
  audit: AuditTable;
  audit_head: AuditHeadTable;
  api_key: ApiKeyTable;
  feed: FeedTable;
  meta: MetaTable;
  busy_block: BusyBlockTable;
  notification: NotificationTable;
  notify_told: NotifyToldTable;
  notify_optout: NotifyOptoutTable;
  lead: LeadTable;
  outbound_delivery: OutboundDeliveryTable;
  staff_user: StaffUserTable;
  staff_session: StaffSessionTable;
  oauth_client: OAuthClientTable;
  oauth_state: OAuthStateTable;
  webhook_subscription: WebhookSubscriptionTable;
  push_channel: PushChannelTable;
}
