// What the owner pastes into Typeform by hand (the clinic sets the webhook and its secret on the form):
// DescriptorBase.manualWebhook. `{url}` is replaced by the connection's webhook URL with its token. Menus as
// FACTS.md records them.
export const MANUAL_WEBHOOK: { steps: string[]; template?: string } = {
  steps: [
    'In Typeform, open the form and go to Connect → Webhooks.',
    'Add a webhook with the endpoint {url} and switch it on.',
    'Under Edit → Secret, set the same secret as this connection\'s Webhook secret: Meridian refuses unsigned deliveries.',
  ],
};
