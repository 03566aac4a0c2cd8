// What the owner pastes into HubSpot by hand (a private app's webhooks can only be set in the app's settings, not
// through the API): DescriptorBase.manualWebhook. `{url}` is replaced by the connection's webhook URL with its
// token. Menus as HubSpot's developer docs give them (developers.hubspot.com, "Create and edit webhook subscriptions
// in legacy private apps").
export const MANUAL_WEBHOOK: { steps: string[]; template?: string } = {
  steps: [
    'In HubSpot, go to Development → Legacy apps and open the app this connection uses.',
    'In the app\'s webhook settings, set the target URL to {url}.',
    'Subscribe to meeting events (object type 0-47): creation, property change, deletion and restore.',
    'HubSpot signs each delivery with the app\'s client secret: put that secret in this connection as well.',
  ],
};
