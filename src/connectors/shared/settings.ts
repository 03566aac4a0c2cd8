// Settings (`config`) several connectors share, described once for the web app's settings form
// (DescriptorBase.configFields). Each is read by the engine for every connector that lists it.
import type { ConfigField } from '../types.ts';

/** src/engine/sync/sweep.ts `policyOf`: what a hand-made move or deletion in the calendar does. */
export const TWO_WAY: ConfigField = {
  key: 'twoWay', label: 'Our events changed there by hand', type: 'select',
  default: 'restore',
  options: [{ value: 'restore', label: 'Put them back as booked (default)' }, { value: 'accept', label: 'Accept them as reschedules and cancellations' }],
  help: 'When someone moves or deletes one of Meridian\'s events there, outside Meridian.',
};

/** src/engine/sync/sweep.ts: busy times read from the calendar flag double bookings unless `busyTimes: false`. */
export const BUSY_TIMES: ConfigField = {
  key: 'busyTimes', label: 'Use other events as busy time', type: 'boolean', default: true,
  help: 'On by default: a booking over another event in this calendar is flagged as a double booking.',
};

/** src/engine/effects/render.ts `coveredByAgreement`: a CRM may hold who the patient is. */
export const COVERED_BY_AGREEMENT: ConfigField = {
  key: 'coveredByAgreement', label: 'Covered by the clinic\'s data agreement', type: 'boolean',
  help: 'Only then are patient names and e-mails sent, and full text is the default.',
};

/** src/engine/sync/poll.ts `pollMinutesFor`. */
export const POLL_MINUTES: ConfigField = {
  key: 'pollMinutes', label: 'Check every (minutes)', type: 'number', placeholder: '15',
  help: 'How often Meridian reads it for changes; 0 stops it.',
};

/** src/engine/inbound/leads.ts (DEFAULTS): the slot search a lead form's submissions get. */
export const LEAD_FORM_SETTINGS: ConfigField[] = [
  { key: 'searchWeeks', label: 'Weeks ahead to look for a slot', type: 'number', placeholder: '4', help: 'From 1 to 26.' },
  { key: 'minNoticeHours', label: 'Minimum notice (hours)', type: 'number', placeholder: '2', help: 'No slot is offered sooner than this.' },
  { key: 'defaultDurationMinutes', label: 'Default length (minutes)', type: 'number', placeholder: '60', help: 'For a request without a known service.' },
];
