// What the owner pastes into TimeTap by hand (TimeTap has no API to register a webhook):
// DescriptorBase.manualWebhook. `{url}` is replaced by the connection's webhook URL with its token. Menus as
// FACTS.md records them ("Webhooks").
export const MANUAL_WEBHOOK: { steps: string[]; template?: string } = {
  steps: [
    'In TimeTap, go to Settings → Integrations → Other Integrations → Webhook.',
    'Enter {url} as the endpoint URL and save.',
    'TimeTap then posts every change to an appointment; Meridian reads each appointment back through the API before applying it.',
  ],
};
