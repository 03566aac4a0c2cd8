// The API client of the web app: same-origin JSON with the session cookie, the CSRF token on every
// unsafe request, and errors as ApiError carrying the API's `{ code, message, details }`.

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string, public details?: Record<string, unknown>) {
    super(message);
  }
}

let csrf = '';
export function setCsrf(token: string): void {
  csrf = token;
}

/** Called when the session ended (401): the app shows the sign-in page. */
export let onSignedOut: () => void = () => {};
export function whenSignedOut(f: () => void): void {
  onSignedOut = f;
}

export async function request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/auth/')) onSignedOut();
    throw new ApiError(res.status, data?.code ?? 'error', data?.message ?? res.statusText, data?.details);
  }
  return data as T;
}

export const api = {
  get: <T = any>(path: string) => request<T>('GET', `/api/v1${path}`),
  post: <T = any>(path: string, body: unknown = {}) => request<T>('POST', `/api/v1${path}`, body),
  put: <T = any>(path: string, body: unknown) => request<T>('PUT', `/api/v1${path}`, body),
  patch: <T = any>(path: string, body: unknown) => request<T>('PATCH', `/api/v1${path}`, body),
  del: <T = any>(path: string) => request<T>('DELETE', `/api/v1${path}`),
};

/** A path segment from an id (ids are checked already; this keeps a stray `/` or `?` from ever changing the path). */
export const seg = (id: string) => encodeURIComponent(id);
/** An error as staff read it: the API's message, with each field it names. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError && Array.isArray(err.details?.issues)) {
    return `${err.message}: ${(err.details.issues as { field?: string; message: string }[]).map((i) => `${i.field ? `${i.field} ` : ''}${i.message}`).join('; ')}`;
  }
  return err instanceof Error ? err.message : String(err);
}

export function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}
