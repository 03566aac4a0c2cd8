// What the owner pastes into Appointlet by hand (Appointlet has no API to register a webhook):
// DescriptorBase.manualWebhook. `{url}` is replaced by the connection's webhook URL with its token. Menus as
// FACTS.md records them.
export const MANUAL_WEBHOOK: { steps: string[]; template?: string } = {
  steps: [
    'In Appointlet, go to Settings → Webhooks → Add Webhook.',
    'Enter {url} and save. Appointlet sends every kind of event; Meridian keeps the meeting ones.',
  ],
};
