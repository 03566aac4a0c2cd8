// What the owner pastes into SimplyBook.me by hand (its callback is set in the API custom feature, not through the
// API): DescriptorBase.manualWebhook. `{url}` is replaced by the connection's webhook URL with its token. Menus as
// FACTS.md records them ("Callback (webhook)").
export const MANUAL_WEBHOOK: { steps: string[]; template?: string } = {
  steps: [
    'In SimplyBook.me, turn on the API custom feature (Custom Features).',
    'In the API custom feature\'s settings, set the Callback URL to {url} and trigger it on create, change and cancel.',
    'Set "Number of API tries" above 0, so a callback Meridian could not take is sent again.',
  ],
};
