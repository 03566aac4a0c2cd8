// What the owner pastes into YouCanBookMe by hand (YCBM has no API to register webhooks): DescriptorBase.manualWebhook.
// `{url}` is replaced by the connection's webhook URL with its token. Menus and the payload as FACTS.md records them
// ("The template clinics paste"); the payload lines are index.ts's WEBHOOK_TEMPLATES, passed in (no import loop).
export function manualWebhook(templates: Record<string, string>): { steps: string[]; template: string } {
  return {
    steps: [
      'In YouCanBookMe, open the booking page\'s Notifications and add a Webhook action for each trigger: when a booking is made, rescheduled, cancelled, and when it is marked as a no-show (Professional and Teams plans).',
      'Set the Method to POST and the Destination URL to {url}; add no headers.',
      'As each action\'s payload, paste the line below for its trigger exactly as written (after the colon). It carries no patient data: Meridian reads the booking from YouCanBookMe.',
    ],
    template: Object.entries(templates).map(([trigger, body]) => `${trigger}: ${body}`).join('\n'),
  };
}
