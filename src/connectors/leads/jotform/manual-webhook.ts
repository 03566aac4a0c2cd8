// What the owner pastes into Jotform by hand (Jotform has no API to turn webhooks on): DescriptorBase.manualWebhook.
// `{url}` is replaced by the connection's webhook URL with its token. Menus as far as FACTS.md could source them:
// Jotform's guide is named, not its menu.
export const MANUAL_WEBHOOK: { steps: string[]; template?: string } = {
  steps: [
    'In Jotform, open the form\'s webhook settings (Jotform\'s guide "How to set up a webhook with Jotform") and add {url} as the webhook URL.',
    'Save. Jotform signs nothing, so keep the URL private: its token is what vouches for each submission.',
  ],
};
