// Every error answer is JSON `{ code, message, details? }` with a stable code.
export class HttpError extends Error {
  constructor(public status: number, public code: string, message: string, public details?: Record<string, unknown>) {
    super(message);
    this.name = 'HttpError';
  }
}

export function errorBody(code: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return details ? { code, message, details } : { code, message };
}
