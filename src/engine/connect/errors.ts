// What goes wrong while connecting an account, for the owner: each code maps to an HTTP status in
// src/http/errors.ts and each message says what happened and what to do.
export type ConnectErrorCode =
  | 'not_found' | 'no_oauth' | 'set_in_environment' | 'invalid_request' | 'oauth_not_configured' | 'no_public_url'
  | 'credentials_refused' | 'provisioned' | 'connection_exists' | 'unknown_platform'
  // the redirect back from the provider
  | 'state_missing' | 'state_unknown' | 'state_used' | 'state_expired' | 'other_session' | 'signed_out' | 'denied' | 'refused';

export class ConnectError extends Error {
  constructor(public code: ConnectErrorCode, message: string) {
    super(message);
    this.name = 'ConnectError';
  }
}
