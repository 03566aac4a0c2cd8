// The one place that knows every platform: one line per connector.
import type { Connector, Descriptor, LeadFormConnector, NotifierConnector, SourceConnector, TargetConnector } from './types.ts';
import { connector as calendly } from './sources/calendly/index.ts';
import { connector as acuity } from './sources/acuity/index.ts';
import { connector as square } from './sources/square/index.ts';
import { connector as calCom } from './sources/cal-com/index.ts';
import { connector as simplybook } from './sources/simplybook/index.ts';
import { connector as appointlet } from './sources/appointlet/index.ts';
import { connector as youcanbookme } from './sources/youcanbookme/index.ts';
import { connector as timetap } from './sources/timetap/index.ts';
import { connector as bookafy } from './sources/bookafy/index.ts';
import { connector as setmore } from './sources/setmore/index.ts';
import { connector as jane } from './sources/jane/index.ts';
import { connector as icsFeed } from './sources/ics-feed/index.ts';
import { connector as simplepractice } from './sources/simplepractice/index.ts';
import { connector as doodle } from './sources/doodle/index.ts';
import { connector as calendarSource } from './sources/calendar-source/index.ts';
import { connector as googleCalendar } from './targets/google-calendar/index.ts';
import { connector as icsPublish } from './targets/ics-publish/index.ts';
import { connector as caldav } from './targets/caldav/index.ts';
import { connector as microsoftGraph } from './targets/microsoft-graph/index.ts';
import { connector as zohoCalendar } from './targets/zoho-calendar/index.ts';
import { connector as salesforce } from './targets/salesforce/index.ts';
import { connector as hubspot } from './targets/hubspot/index.ts';
import { connector as leadForm } from './leads/lead-form/index.ts';
import { connector as typeform } from './leads/typeform/index.ts';
import { connector as jotform } from './leads/jotform/index.ts';
import { connector as tally } from './leads/tally/index.ts';
import { connector as sms } from './notify/sms/index.ts';
import { connector as webhookOut } from './notify/webhook-out/index.ts';
import { connector as email } from './notify/email/index.ts';

const SOURCES: SourceConnector[] = [calendly, acuity, square, calCom, simplybook, appointlet, youcanbookme, timetap, bookafy, setmore, jane, icsFeed, simplepractice, doodle, calendarSource];
const TARGETS: TargetConnector[] = [googleCalendar, microsoftGraph, caldav, zohoCalendar, icsPublish, salesforce, hubspot];
const LEAD_FORMS: LeadFormConnector[] = [leadForm, typeform, jotform, tally];
const NOTIFIERS: NotifierConnector[] = [sms, webhookOut, email];

const byId = new Map<string, Connector>([...SOURCES, ...TARGETS, ...LEAD_FORMS, ...NOTIFIERS].map((c) => [c.descriptor.id, c]));

export function getConnector(platform: string): Connector | undefined {
  return byId.get(platform);
}

export function getSource(platform: string): SourceConnector | undefined {
  const c = byId.get(platform);
  return c && c.descriptor.role === 'source' ? (c as SourceConnector) : undefined;
}

export function getTarget(platform: string): TargetConnector | undefined {
  const c = byId.get(platform);
  return c && c.descriptor.role === 'target' ? (c as TargetConnector) : undefined;
}

export function getLeadForm(platform: string): LeadFormConnector | undefined {
  const c = byId.get(platform);
  return c && c.descriptor.role === 'lead-form' ? (c as LeadFormConnector) : undefined;
}

export function getNotifier(platform: string): NotifierConnector | undefined {
  const c = byId.get(platform);
  return c && c.descriptor.role === 'notifier' ? (c as NotifierConnector) : undefined;
}

export function allDescriptors(): Descriptor[] {
  return [...byId.values()].map((c) => c.descriptor);
}

export function platformIds(): string[] {
  return [...byId.keys()];
}
