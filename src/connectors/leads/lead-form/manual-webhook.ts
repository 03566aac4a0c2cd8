// What the owner pastes into a form tool by hand (Meridian's own plain format: the sender is whatever form tool the
// clinic uses): DescriptorBase.manualWebhook. `{url}` is replaced by the connection's webhook URL with its token.
// Menus as FACTS.md describes the format.
export const MANUAL_WEBHOOK: { steps: string[]; template?: string } = {
  steps: [
    'Point your form tool\'s webhook (POST, a JSON or form-encoded body) at {url}.',
    'A sender that can sign adds X-Meridian-Signature: sha256=<hex HMAC-SHA256 of the raw body with this connection\'s signing secret>; otherwise the token in the URL is what vouches for it.',
  ],
};
