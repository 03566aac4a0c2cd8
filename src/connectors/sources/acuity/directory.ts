// Acuity's calendars (one per practitioner) and appointment types, to map onto Meridian's. The refs are what
// index.ts puts into a SourceChange: `practitionerRef` = String(calendarID), `serviceRef` =
// String(appointmentTypeID). `GET /calendars` → [{ id, name, email, … }], `GET /appointment-types` →
// [{ id, name, active, … }]; neither is paged. A booking's location is free text, so no locations are listed.
import { attempt } from '../../shared/subscription.ts';
import type { ConnectionContext, Directory, WriteOutcome } from '../../types.ts';
import { acuityApi } from './subscriptions.ts';

interface Calendar { id?: number | string; name?: string; email?: string }
interface AppointmentType { id?: number | string; name?: string; active?: boolean | string }

const list = async <T>(ctx: ConnectionContext, path: string): Promise<T[]> => {
  const v = await acuityApi(ctx, 'GET', path);
  return Array.isArray(v) ? (v as T[]) : [];
};

export function directory(ctx: ConnectionContext): Promise<WriteOutcome<Directory>> {
  return attempt(async () => {
    const calendars = await list<Calendar>(ctx, '/calendars');
    const types = await list<AppointmentType>(ctx, '/appointment-types');
    return {
      staff: calendars.filter((c) => c.id !== undefined).map((c) => ({ ref: String(c.id), name: c.name || String(c.id), ...(c.email ? { email: c.email } : {}) })),
      services: types.filter((t) => t.id !== undefined).map((t) => ({
        ref: String(t.id), name: `${t.name || t.id}${t.active === false || t.active === 'false' ? ' (inactive)' : ''}`,
      })),
    };
  });
}
