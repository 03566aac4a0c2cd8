// CalDAV (RFC 4791) as a target: iCloud and any standards server (targets.md §3). tsdav does the
// discovery and the requests; every answer is turned into an outcome here.
// - One resource per appointment at a deterministic href `meridian-<appointment id>[-g<n>].ics` with
//   the same UID; `If-None-Match: *` to create, `If-Match: <etag>` to update and delete.
// - A create that meets 412 finds our earlier attempt (GET, check X-MERIDIAN-APPOINTMENT-ID) and
//   updates it; an href or UID held by something else moves to the next generation.
// - Stored objects carry no METHOD, a VTIMEZONE for every TZID, DTEND always (iCloud refuses events
//   without it), SEQUENCE = our revision, CLASS:PRIVATE and our ids as X- properties.
import { driftOf, fail, ok, type BusyInterval, type ConnectionContext, type LinkState, type TargetClient, type TargetConnector, type TargetEvent, type WriteOutcome } from '../../types.ts';
import { icsEventOf, parseCalendar, renderCalendar } from '../../shared/icalendar.ts';
import { fetchCalendarObjects } from 'tsdav';
import { authHeaders, failureOf, forgetSession, get, parseSyncAnswer, pickCalendar, preconditions, put, remove, session, syncCollection } from './dav.ts';

export const PLATFORM = 'caldav';
const MAX_GENERATION = 5;
export const X_APPOINTMENT = 'X-MERIDIAN-APPOINTMENT-ID';
export const X_REVISION = 'X-MERIDIAN-REVISION';

function resourceName(appointmentId: string, generation: number): string {
  return `meridian-${appointmentId}${generation > 0 ? `-g${generation}` : ''}`;
}

export function objectFor(e: TargetEvent, generation: number, domain: string, now: Date): string {
  const name = resourceName(e.appointmentId, generation);
  return renderCalendar({
    stamp: now,
    events: [{
      ...icsEventOf(e, `${name}@${domain}`),
      private: true,
      x: { [X_APPOINTMENT]: e.appointmentId, [X_REVISION]: String(e.revision) },
    }],
  });
}

function holdsOurs(body: string | undefined, appointmentId: string): boolean {
  if (!body) return false;
  try {
    return parseCalendar(body).events.some((ev) => ev.x[X_APPOINTMENT] === appointmentId);
  } catch {
    return false;
  }
}

export function createClient(ctx: ConnectionContext): TargetClient {
  const domain = (ctx.config.uidDomain as string | undefined) ?? 'meridian.local';
  const calendarUrl = async (wanted: string | undefined): Promise<WriteOutcome<string>> => {
    try {
      const s = await session(ctx);
      const cal = pickCalendar(s.calendars, wanted ?? (ctx.config.calendar as string | undefined));
      if (!cal) return fail({ class: 'permanent', message: `CalDAV: no calendar "${wanted ?? '(default)'}" in this account (${s.calendars.length} found)` });
      return ok(cal.url.replace(/\/?$/, '/'));
    } catch (err) {
      const m = (err as Error).message ?? '';
      forgetSession(ctx);
      if (/401|unauthori[sz]ed/i.test(m)) return fail({ class: 'auth', status: 401, message: 'CalDAV: the server refused the username or password' });
      return fail({ class: 'transient', message: `CalDAV discovery failed: ${m.slice(0, 120)}` });
    }
  };

  async function create(e: TargetEvent, calUrl: string, generation: number): Promise<WriteOutcome<LinkState>> {
    for (let g = generation; g <= MAX_GENERATION; g++) {
      const href = `${calUrl}${resourceName(e.appointmentId, g)}.ics`;
      const r = await put(ctx, href, objectFor(e, g, domain, ctx.now()), undefined);
      if (r.kind === 'ok') return ok(await linkAfterWrite(href, r.etag, e.calendarId, g, calUrl));
      if (r.kind === 'http' && r.status === 412) {
        // Something sits at our href: our earlier attempt (update it) or not ours (next generation).
        const cur = await get(ctx, href);
        if (cur.kind === 'ok' && holdsOurs(cur.body, e.appointmentId) && cur.etag) {
          const upd = await put(ctx, href, objectFor(e, g, domain, ctx.now()), cur.etag);
          if (upd.kind === 'ok') return ok(await linkAfterWrite(href, upd.etag, e.calendarId, g, calUrl));
          return fail(failureOf(upd, 'update'));
        }
        continue;
      }
      if (r.kind === 'http' && (r.status === 403 || r.status === 409) && preconditions(r.body).includes('no-uid-conflict')) continue;
      return fail(failureOf(r, 'create'));
    }
    return fail({ class: 'permanent', message: `CalDAV: no free resource name after ${MAX_GENERATION} generations` });
  }

  /** Some servers return no ETag when they rewrote the object: read it back for the next If-Match. */
  async function linkAfterWrite(href: string, etag: string | undefined, calendarId: string | undefined, generation: number, calUrl: string): Promise<LinkState> {
    let tag = etag;
    if (!tag) {
      const r = await get(ctx, href);
      if (r.kind === 'ok') tag = r.etag;
    }
    return { remoteId: href, calendarId, etag: tag, generation, data: { calendarUrl: calUrl } };
  }

  return {
    async upsert(e, link) {
      const cal = await calendarUrl(e.calendarId);
      if (!cal.ok) return cal;
      if (!link || (link.data?.calendarUrl && link.data.calendarUrl !== cal.value)) return create(e, cal.value, link?.generation ?? 0);
      const body = objectFor(e, link.generation, domain, ctx.now());
      let r = await put(ctx, link.remoteId, body, link.etag);
      if (r.kind === 'http' && r.status === 412) {
        // Changed since we wrote it (by hand, or a lost answer): take the current etag and write ours.
        const cur = await get(ctx, link.remoteId);
        if (cur.kind === 'ok' && cur.etag) r = await put(ctx, link.remoteId, body, cur.etag);
        else if (cur.kind === 'http' && cur.status === 404) return create(e, cal.value, link.generation);
      }
      if (r.kind === 'ok') return ok(await linkAfterWrite(link.remoteId, r.etag, e.calendarId, link.generation, cal.value));
      if (r.kind === 'http' && (r.status === 404 || r.status === 410)) return create(e, cal.value, link.generation);
      return fail(failureOf(r, 'update'));
    },
    async changes(calendarId, token) {
      const cal = await calendarUrl(calendarId);
      if (!cal.ok) return cal;
      let full = !token;
      let r = await syncCollection(ctx, cal.value, token);
      // 403 with DAV:valid-sync-token (unknown or expired token): start again from nothing.
      if (token && r.kind === 'http' && (r.status === 403 || r.status === 409) && preconditions(r.body).includes('valid-sync-token')) {
        full = true;
        r = await syncCollection(ctx, cal.value, undefined);
      }
      if (r.kind !== 'ok') return fail(failureOf(r, 'sync-collection'));
      const parsed = parseSyncAnswer(r.body ?? '', cal.value);
      return ok({ full, changed: parsed.hrefs, token: parsed.token });
    },
    async busy(window, calendarId) {
      const cal = await calendarUrl(calendarId);
      if (!cal.ok) return cal;
      try {
        const s = await session(ctx);
        const calendar = s.calendars.find((c) => c.url.replace(/\/?$/, '/') === cal.value)!;
        const objects = await fetchCalendarObjects({ calendar, timeRange: { start: window.from.toISOString(), end: window.to.toISOString() }, headers: authHeaders(ctx), fetch: ctx.fetch });
        const out: BusyInterval[] = [];
        for (const o of objects) {
          for (const ev of parseCalendar(String(o.data ?? '')).events) {
            if (ev.x[X_APPOINTMENT] || ev.status === 'CANCELLED' || ev.transparent) continue;
            out.push({ start: ev.start, end: ev.end });
          }
        }
        return ok(out);
      } catch (err) {
        return fail({ class: 'transient', message: `CalDAV busy times: ${(err as Error).message.slice(0, 120)}` });
      }
    },
    async inspect(e, link) {
      const r = await get(ctx, link.remoteId);
      if (r.kind === 'http' && (r.status === 404 || r.status === 410)) return ok({ state: 'missing' });
      if (r.kind !== 'ok') return fail(failureOf(r, 'read'));
      try {
        const ev = parseCalendar(r.body ?? '').events.find((x) => x.x[X_APPOINTMENT] === e.appointmentId);
        return ok(driftOf(e, ev && { start: ev.start, end: ev.end, title: ev.summary }));
      } catch {
        return ok({ state: 'changed' });
      }
    },
    async remove(link) {
      let r = await remove(ctx, link.remoteId, link.etag);
      if (r.kind === 'http' && r.status === 412) {
        const cur = await get(ctx, link.remoteId);
        if (cur.kind === 'http' && cur.status === 404) return ok(undefined);
        if (cur.kind === 'ok') r = await remove(ctx, link.remoteId, cur.etag);
      }
      if (r.kind === 'ok' || (r.kind === 'http' && (r.status === 404 || r.status === 410))) return ok(undefined);
      return fail(failureOf(r, 'delete'));
    },
  };
}

export const connector: TargetConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'target',
    kind: 'calendar',
    displayName: 'CalDAV (iCloud and other servers)',
    defaultBaseUrl: 'https://caldav.icloud.com',
    defaultPrivacy: 'minimal',
    auth: [
      { key: 'username', label: 'Username (Apple ID for iCloud)', secret: true, required: true },
      { key: 'password', label: 'Password (an app-specific password for iCloud)', secret: true, required: true, help: 'appleid.apple.com → Sign-In and Security → App-Specific Passwords' },
    ],
    fidelity:
      'Events written into a CalDAV calendar (iCloud by default; any RFC 4791 server by base URL) with conditional '
      + 'writes (If-None-Match / If-Match), so a retry never duplicates; a hand edit is detected (412) and, under the default '
      + 'restore policy, replaced by the appointment as it is. Calendars are found by discovery; a practitioner binding names the calendar by its '
      + 'display name or URL.',
    capabilities: { push: true, readChanges: true, freeBusy: true, deterministicIds: true },
  },
  client: createClient,
};
