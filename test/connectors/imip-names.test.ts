// A quote in a name must not change an iMIP invitation's ATTENDEE or ORGANIZER: RFC 5545 has no escape
// inside a quoted parameter, so names are written with RFC 6868's ^' / ^n / ^^ (paramValue).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ICAL from 'ical.js';
import { itipObject } from '../../src/connectors/notify/email/imip.ts';
import type { Invitation } from '../../src/connectors/types.ts';

const invite: Invitation = {
  method: 'REQUEST', uid: 'meridian-1', sequence: 0, start: '2027-03-12T09:00:00Z', end: '2027-03-12T10:00:00Z',
  timeZone: 'Europe/Berlin', summary: 'Massage', description: 'x',
};

test('a patient named `Mallory":mailto:attacker@evil.example` gets exactly one ATTENDEE: their own address', () => {
  const text = itipObject(invite, { email: 'desk@clinic.example', name: 'The "Desk"\nline ^2' }, { email: 'mallory@patient.example', name: 'Mallory":mailto:attacker@evil.example' }, new Date('2027-03-02T16:15:00Z'));
  assert.ok(!text.includes('\\"'), 'no backslash-escaped DQUOTE in a parameter');
  const ev = new ICAL.Component(ICAL.parse(text)).getFirstSubcomponent('vevent')!;
  const attendees = ev.getAllProperties('attendee');
  assert.equal(attendees.length, 1);
  assert.equal(String(attendees[0].getFirstValue()).toLowerCase(), 'mailto:mallory@patient.example');
  // ical.js decodes RFC 6868: the patient's name comes back exactly as they typed it.
  assert.equal(attendees[0].getParameter('cn'), 'Mallory":mailto:attacker@evil.example');
  const org = ev.getFirstProperty('organizer')!;
  assert.equal(String(org.getFirstValue()), 'mailto:desk@clinic.example');
  assert.equal(org.getParameter('cn'), 'The "Desk"\nline ^2');
});
