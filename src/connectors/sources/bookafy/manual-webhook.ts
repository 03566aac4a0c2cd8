// What the owner pastes into Bookafy by hand (no subscription-create call is documented):
// DescriptorBase.manualWebhook. `{url}` is replaced by the connection's webhook URL with its token. Menus as far as
// FACTS.md could source them: Bookafy documents no menu, so none is named.
export const MANUAL_WEBHOOK: { steps: string[]; template?: string } = {
  steps: [
    'Bookafy does not document where its webhooks are set: in the webhook settings of Bookafy (or through Bookafy\'s support), register {url} for appointment events (created, updated, cancelled).',
    'Keep Bookafy\'s own appointment payload: Meridian reads the appointment id from it and everything else from Bookafy\'s API.',
  ],
};
