// The cal-api-version headers Cal.com's v2 endpoints document (FACTS.md): bookings (and webhooks, which take
// any version) `2024-08-13`; event types `2024-06-14` ("Must be set to 2024-06-14").
export const API_VERSION = '2024-08-13';
export const EVENT_TYPES_VERSION = '2024-06-14';
