// Rendering an appointment for one target connection (privacy level and template from the connection; a
// practitioner's or the clinic's binding to the target may set its own level, which wins for that binding).
import { getConnector } from '../../connectors/registry.ts';
import type { EventTemplate, RenderedText } from '../../domain/render.ts';
import { renderEventText } from '../../domain/render.ts';
import type { Appointment, PrivacyLevel } from '../../domain/types.ts';
import { DEFAULT_PRIVACY } from '../../domain/types.ts';
import type { ConnectionRecord, Exec, TargetBinding } from '../../store/repo.ts';

export function privacyOf(conn: Pick<ConnectionRecord, 'platform' | 'privacy' | 'config'>): PrivacyLevel {
  const c = getConnector(conn.platform);
  if (conn.privacy) return conn.privacy;
  if (c?.descriptor.role !== 'target') return DEFAULT_PRIVACY;
  // A CRM holds full text by default only where the clinic's data agreement covers it.
  if (c.descriptor.kind === 'crm') return coveredByAgreement(conn) ? 'full' : 'minimal';
  return c.descriptor.defaultPrivacy;
}

/** The connection says the CRM is covered by the clinic's data agreement (then it may hold who the patient is). */
export function coveredByAgreement(conn: Pick<ConnectionRecord, 'config'>): boolean {
  return conn.config.coveredByAgreement === true;
}

export function templateOf(conn: ConnectionRecord): EventTemplate | undefined {
  const t = conn.config.template as Partial<EventTemplate> | undefined;
  return t && typeof t.title === 'string' && typeof t.description === 'string' ? { title: t.title, description: t.description } : undefined;
}

/**
 * The level an appointment is written at on `conn`: the binding's own (the practitioner's binding to that
 * connection, else the clinic's), narrower or wider than the connection's; else the connection's.
 */
export function bindingPrivacy(conn: Pick<ConnectionRecord, 'id' | 'platform' | 'privacy' | 'config'>, practitionerBindings: TargetBinding[], clinicBindings: TargetBinding[]): PrivacyLevel {
  const own = practitionerBindings.find((b) => b.connection === conn.id) ?? clinicBindings.find((b) => b.connection === conn.id);
  return own?.privacy ?? privacyOf(conn);
}

/** Names used in event text, loaded once per batch. */
export class NameBook {
  private clinics = new Map<string, string>();
  private names = new Map<string, string | undefined>();
  private bindings = new Map<string, TargetBinding[]>();
  constructor(private db: Exec) {}

  private async bindingsOf(table: 'practitioner' | 'clinic', id: string): Promise<TargetBinding[]> {
    const key = `${table}:${id}`;
    if (!this.bindings.has(key)) {
      const list = table === 'practitioner'
        ? JSON.parse((await this.db.selectFrom('practitioner').select('targets').where('id', '=', id).executeTakeFirst())?.targets ?? '[]')
        : JSON.parse((await this.db.selectFrom('clinic').select('settings').where('id', '=', id).executeTakeFirst())?.settings ?? '{}').targets ?? [];
      this.bindings.set(key, list as TargetBinding[]);
    }
    return this.bindings.get(key)!;
  }

  /** The privacy level of `appt` on `conn` (the binding's, else the connection's). */
  async privacy(appt: Pick<Appointment, 'practitionerId' | 'clinicId'>, conn: ConnectionRecord): Promise<PrivacyLevel> {
    return bindingPrivacy(conn, await this.bindingsOf('practitioner', appt.practitionerId), await this.bindingsOf('clinic', appt.clinicId));
  }

  private async lookup(table: 'practitioner' | 'service' | 'location', id: string | undefined): Promise<string | undefined> {
    if (!id) return undefined;
    const key = `${table}:${id}`;
    if (!this.names.has(key)) {
      const r = await this.db.selectFrom(table).select('name').where('id', '=', id).executeTakeFirst();
      this.names.set(key, r?.name);
    }
    return this.names.get(key);
  }

  async clinic(id: string): Promise<string> {
    if (!this.clinics.has(id)) {
      const r = await this.db.selectFrom('clinic').select('name').where('id', '=', id).executeTakeFirst();
      this.clinics.set(id, r?.name ?? 'the clinic');
    }
    return this.clinics.get(id)!;
  }

  async render(appt: Appointment, conn: ConnectionRecord): Promise<RenderedText> {
    const source = getConnector(appt.origin.platform)?.descriptor.displayName ?? (appt.origin.platform === 'manual' ? 'front desk' : appt.origin.platform);
    return renderEventText(
      appt,
      {
        clinicName: await this.clinic(appt.clinicId),
        practitionerName: await this.lookup('practitioner', appt.practitionerId),
        serviceName: await this.lookup('service', appt.serviceId),
        locationName: await this.lookup('location', appt.locationId),
        sourceName: source,
      },
      await this.privacy(appt, conn),
      templateOf(conn),
    );
  }
}
