// What the owner pastes into Tally by hand (the clinic sets the webhook and its signing secret on the form):
// DescriptorBase.manualWebhook. `{url}` is replaced by the connection's webhook URL with its token. Menus as the
// descriptor's help and FACTS.md record them.
export const MANUAL_WEBHOOK: { steps: string[]; template?: string } = {
  steps: [
    'In Tally, open the form and go to Integrations → Webhooks.',
    'Connect a webhook with the endpoint URL {url}.',
    'Add a signing secret equal to this connection\'s Signing secret: Meridian refuses unsigned deliveries.',
  ],
};
