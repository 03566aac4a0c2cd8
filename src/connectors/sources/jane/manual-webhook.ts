// What the owner pastes into Jane by hand (Meridian does not create Jane's partner webhooks itself):
// DescriptorBase.manualWebhook. `{url}` is replaced by the connection's webhook URL with its token. Menus as
// sources-a.md §5 records the partner API.
export const MANUAL_WEBHOOK: { steps: string[]; template?: string } = {
  steps: [
    'Jane has no webhook page for clinics: webhooks are registered by an approved Jane partner app through Jane\'s partner API (POST /webhooks, one per topic).',
    'Register {url} as the target_url of APPOINTMENT_BOOKED, APPOINTMENT_CANCELLED, APPOINTMENT_UNCANCELLED and APPOINTMENT_RESCHEDULED.',
    'Without webhooks nothing is lost: Meridian still finds changed appointments at its regular poll.',
  ],
};
