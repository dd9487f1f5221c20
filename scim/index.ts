/** The SCIM 2.0 protocol layer: wire schemas, filter building and the HTTP client. */
export * from './schemas.ts';
export * from './filter.ts';
export * from './client.ts';
export * from './limiter.ts';
export * from './credential.ts';
export * from './redact.ts';
export * from './retry.ts';
export * from './breaker.ts';
export * from './slots.ts';
