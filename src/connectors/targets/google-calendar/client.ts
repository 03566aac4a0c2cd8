// A thin typed fetch client for the Calendar v3 calls Meridian needs (targets.md §1.2, push §1.6).
// No SDK at runtime: the Event type comes from `@googleapis/calendar` as a type only.
// Every write carries `sendUpdates=none` so Google never e-mails anyone about our events.
import type { calendar_v3 } from '@googleapis/calendar';
import type { ConnectionContext, ConnectorFailure } from '../../types.ts';
import { AuthFailure, OAuthSession } from '../../shared/oauth.ts';
import { networkFailure } from '../../shared/http.ts';

export type GoogleEvent = calendar_v3.Schema$Event;

/** Google's error body: `{error: {errors: [{domain, reason, message}], code, message}}` (targets.md §1.9). */
export interface GoogleError {
  reasons: string[];
  domains: string[];
  message?: string;
}

export type ApiAnswer<T> =
  /** 2xx. `data` is undefined for body-less answers (DELETE 204). */
  | { kind: 'ok'; status: number; data: T | undefined }
  /** A non-2xx answer, after the one 401 refresh-and-retry. `res` still holds its body. */
  | { kind: 'http'; status: number; res: Response; error: GoogleError }
  /** No answer: network error, or the token could not be obtained. */
  | { kind: 'failed'; failure: ConnectorFailure };

const REQUEST_TIMEOUT_MS = 30_000;
const WRITE_QUERY = { sendUpdates: 'none' } as const;

interface RequestSpec {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string>;
  body?: unknown;
  ifMatch?: string;
}

export async function parseGoogleError(res: Response): Promise<GoogleError> {
  try {
    const j = (await res.clone().json()) as {
      error?: { message?: unknown; errors?: Array<{ reason?: unknown; domain?: unknown }>; details?: Array<{ reason?: unknown }> };
    };
    const items = Array.isArray(j.error?.errors) ? j.error.errors : [];
    const details = Array.isArray(j.error?.details) ? j.error.details : [];
    const strings = (xs: unknown[]) => xs.filter((x): x is string => typeof x === 'string');
    return {
      reasons: strings([...items.map((e) => e.reason), ...details.map((d) => d.reason)]),
      domains: strings(items.map((e) => e.domain)),
      message: typeof j.error?.message === 'string' ? j.error.message : undefined,
    };
  } catch {
    return { reasons: [], domains: [] };
  }
}

export class GoogleCalendarApi {
  private readonly root: string;

  constructor(
    private readonly ctx: ConnectionContext,
    private readonly session: OAuthSession | undefined,
    private readonly missingAuth?: string,
  ) {
    this.root = `${ctx.baseUrl.replace(/\/+$/, '')}/calendar/v3`;
  }

  insert(calendarId: string, event: GoogleEvent): Promise<ApiAnswer<GoogleEvent>> {
    return this.send({ method: 'POST', path: eventsPath(calendarId), query: WRITE_QUERY, body: event });
  }

  list(calendarId: string, query: Record<string, string>): Promise<ApiAnswer<calendar_v3.Schema$Events>> {
    return this.send({ method: 'GET', path: eventsPath(calendarId), query });
  }

  get(calendarId: string, eventId: string): Promise<ApiAnswer<GoogleEvent>> {
    return this.send({ method: 'GET', path: eventPath(calendarId, eventId) });
  }

  patch(calendarId: string, eventId: string, event: GoogleEvent, ifMatch?: string): Promise<ApiAnswer<GoogleEvent>> {
    return this.send({ method: 'PATCH', path: eventPath(calendarId, eventId), query: WRITE_QUERY, body: event, ifMatch });
  }

  delete(calendarId: string, eventId: string): Promise<ApiAnswer<void>> {
    return this.send({ method: 'DELETE', path: eventPath(calendarId, eventId), query: WRITE_QUERY });
  }

  /** calendarList.list: the calendars on the account's calendar list (one page). */
  calendarList(query: Record<string, string>): Promise<ApiAnswer<calendar_v3.Schema$CalendarList>> {
    return this.send({ method: 'GET', path: '/users/me/calendarList', query });
  }

  /** events.watch: a push channel on a calendar's events (targets.md §1.6); the answer is the Channel Google made. */
  watch(calendarId: string, channel: calendar_v3.Schema$Channel): Promise<ApiAnswer<calendar_v3.Schema$Channel>> {
    return this.send({ method: 'POST', path: `${eventsPath(calendarId)}/watch`, body: channel });
  }

  /** channels.stop: `{id, resourceId}` of a channel; Google answers 204. */
  stopChannel(channel: { id: string; resourceId: string }): Promise<ApiAnswer<void>> {
    return this.send({ method: 'POST', path: '/channels/stop', body: channel });
  }

  /** One call with a Bearer token; a 401 gets one fresh token and one retry. */
  private async send<T>(spec: RequestSpec): Promise<ApiAnswer<T>> {
    const first = await this.token();
    if (typeof first !== 'string') return first;
    let res = await this.fetchOnce(spec, first);
    if (!(res instanceof Response)) return res;
    if (res.status === 401) {
      await res.body?.cancel().catch(() => undefined);
      const second = await this.token(first);
      if (typeof second !== 'string') return second;
      res = await this.fetchOnce(spec, second);
      if (!(res instanceof Response)) return res;
    }
    if (!res.ok) return { kind: 'http', status: res.status, res, error: await parseGoogleError(res) };
    const text = await res.text().catch(() => '');
    let data: T | undefined;
    try {
      data = text ? (JSON.parse(text) as T) : undefined;
    } catch {
      return { kind: 'failed', failure: { class: 'transient', status: res.status, message: `Google Calendar answered HTTP ${res.status} with a body that is not JSON` } };
    }
    return { kind: 'ok', status: res.status, data };
  }

  /**
   * A usable access token. After a 401 with `rejected`, prefer a token another caller refreshed in the
   * meantime; otherwise join (or start) the single-flight refresh.
   */
  private async token(rejected?: string): Promise<string | { kind: 'failed'; failure: ConnectorFailure }> {
    if (!this.session) return { kind: 'failed', failure: { class: 'auth', message: this.missingAuth ?? 'Google Calendar: not connected' } };
    try {
      if (rejected === undefined) return await this.session.accessToken();
      const current = await this.session.accessToken();
      return current !== rejected ? current : await this.session.refresh();
    } catch (err) {
      if (err instanceof AuthFailure) return { kind: 'failed', failure: err.failure };
      return { kind: 'failed', failure: networkFailure(err) };
    }
  }

  private async fetchOnce(spec: RequestSpec, token: string): Promise<Response | { kind: 'failed'; failure: ConnectorFailure }> {
    const url = new URL(this.root + spec.path);
    for (const [k, v] of Object.entries(spec.query ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (spec.body !== undefined) headers['content-type'] = 'application/json';
    if (spec.ifMatch) headers['if-match'] = spec.ifMatch;
    try {
      return await this.ctx.fetch(url, {
        method: spec.method,
        headers,
        body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      return { kind: 'failed', failure: networkFailure(err) };
    }
  }
}

function eventsPath(calendarId: string): string {
  return `/calendars/${encodeURIComponent(calendarId)}/events`;
}

function eventPath(calendarId: string, eventId: string): string {
  return `${eventsPath(calendarId)}/${encodeURIComponent(eventId)}`;
}
