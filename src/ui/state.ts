// What every page shares: who is signed in and the clinic's reference data.
import { api } from './api.ts';

export interface Me { user: { id: string; email: string; name: string; role: 'owner' | 'front_desk' | 'practitioner'; practitionerId?: string }; scopes: string[]; csrf: string }
export interface Practitioner { id: string; name: string; locationIds: string[]; active: boolean; services?: string[] }
export interface Location { id: string; name: string; timeZone: string }
export interface Service { id: string; name: string; durationMinutes?: number }
export interface Appointment {
  id: string; practitionerId: string; locationId?: string; serviceId?: string; roomId?: string;
  patient: { name: string; email?: string; phone?: string }; start: string; end: string; timeZone: string;
  status: 'requested' | 'booked' | 'cancelled' | 'no_show' | 'completed'; notes?: string;
  origin: { platform: string; connectionId: string; externalId: string }; revision: number; conflicts: string[]; diverged?: string; updatedAt: string;
}

export const state = {
  me: undefined as Me | undefined,
  practitioners: [] as Practitioner[],
  locations: [] as Location[],
  services: [] as Service[],
  platformNames: new Map<string, string>(),
};

export const canWrite = () => Boolean(state.me && state.me.user.role !== 'practitioner');
export const isOwner = () => state.me?.user.role === 'owner';

/** The zone the schedule is shown in: the location's, else the first location's, else the browser's. */
export function zoneFor(locationId?: string): string {
  return state.locations.find((l) => l.id === locationId)?.timeZone ?? state.locations[0]?.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
}

export async function loadReference(): Promise<void> {
  const [p, l, s] = await Promise.all([api.get('/practitioners'), api.get('/locations'), api.get('/services')]);
  state.practitioners = (p.items as Practitioner[]).filter((x) => x.active !== false);
  state.locations = l.items;
  state.services = s.items;
  if (canWrite()) {
    const d = await api.get('/platforms').catch(() => ({ items: [] }));
    state.platformNames = new Map((d.items as { id: string; displayName: string }[]).map((x) => [x.id, x.displayName]));
  }
}

export const practitionerName = (id: string) => state.practitioners.find((p) => p.id === id)?.name ?? id;
export const serviceName = (id?: string) => (id ? state.services.find((s) => s.id === id)?.name ?? id : undefined);
export const locationName = (id?: string) => (id ? state.locations.find((l) => l.id === id)?.name ?? id : undefined);

/** How staff name where a booking came from. */
export function sourceName(platform: string): string {
  if (platform === 'manual') return 'Meridian (staff)';
  if (platform.startsWith('calendar:')) return `busy time in the ${platform.slice(9)} calendar`;
  return state.platformNames.get(platform) ?? platform.replace(/(^|-)([a-z])/g, (_m, s: string, c: string) => `${s ? ' ' : ''}${c.toUpperCase()}`);
}

export const STATUS_LABEL: Record<Appointment['status'], string> = {
  requested: 'Requested', booked: 'Booked', cancelled: 'Cancelled', no_show: 'No-show', completed: 'Completed',
};
