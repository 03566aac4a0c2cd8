// The canonical model (DESIGN.md §3). Pure types and constants: no I/O here.

export const APPOINTMENT_STATUSES = ['requested', 'booked', 'cancelled', 'no_show', 'completed'] as const;
export type AppointmentStatus = (typeof APPOINTMENT_STATUSES)[number];

/** Statuses that occupy the practitioner's time (and so can conflict). */
export const ACTIVE_STATUSES: readonly AppointmentStatus[] = ['requested', 'booked'];

export const CHANGE_KINDS = ['upsert', 'cancel', 'no_show'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

export const PRIVACY_LEVELS = ['full', 'minimal', 'busy'] as const;
export type PrivacyLevel = (typeof PRIVACY_LEVELS)[number];
export const DEFAULT_PRIVACY: PrivacyLevel = 'minimal';

export interface Patient {
  name: string;
  email?: string;
  phone?: string;
  timeZone?: string;
}

export interface Origin {
  platform: string;
  connectionId: string;
  externalId: string;
}

export interface Appointment {
  id: string;
  clinicId: string;
  locationId?: string;
  practitionerId: string;
  serviceId?: string;
  roomId?: string;
  patient: Patient;
  /** ISO-8601 UTC instant with Z. */
  start: string;
  end: string;
  /** IANA zone the appointment is shown in. */
  timeZone: string;
  status: AppointmentStatus;
  notes?: string;
  origin: Origin;
  /** Increments on every applied change. */
  revision: number;
  /** Ids of overlapping active appointments (same practitioner or same room). */
  conflicts: string[];
  /**
   * Set when a staff edit could not be written back to the booking platform (it has no API for it, or
   * refused): the patient's booking tool still tells the old story. Cleared when the platform is written
   * or sends a newer state of its own.
   */
  diverged?: string;
  createdAt: string;
  updatedAt: string;
}

/** What a source connector emits (DESIGN.md §3): the contract of `meridian parse-webhook`. */
export interface SourceChange {
  platform: string;
  externalId: string;
  kind: ChangeKind;
  /** UTC instant with Z of the event at the platform. */
  occurredAt: string;
  deliveryId?: string;
  /** A reschedule the platform models as cancel + new booking: the external id this one replaces. */
  replacesExternalId?: string;
  /** The platform's own monotonic version of the record, when it has one (Square `version`). */
  version?: number;
  appointment: Partial<SourceAppointment>;
  /** The payload carried only ids: the engine fetches the booking through the connector first. */
  needsFetch: boolean;
}

export interface SourceAppointment {
  start: string;
  end: string;
  timeZone: string;
  status: AppointmentStatus;
  practitionerRef: string;
  /** The host's e-mail when the platform gives it beside its own id (used when the id is not mapped). */
  practitionerEmail: string;
  serviceRef: string;
  locationRef: string;
  patient: Patient;
  notes: string;
}

export interface Clinic {
  id: string;
  name: string;
  timeZone: string;
  language: string;
}

export interface Location {
  id: string;
  clinicId: string;
  name: string;
  timeZone: string;
  address?: string;
}

export interface Practitioner {
  id: string;
  clinicId: string;
  name: string;
  email?: string;
  timeZone?: string;
  locationIds: string[];
  active: boolean;
}

export interface Service {
  id: string;
  clinicId: string;
  name: string;
  durationMinutes?: number;
}

export interface Room {
  id: string;
  locationId: string;
  name: string;
}
