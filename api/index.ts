export * from './app.ts';
export * from './server.ts';
export * from './sync-control.ts';
export * from './openapi.ts';
export { AddMembersSchema, PageQuerySchema } from './directory-routes.ts';
export { LinksQuerySchema, RunsQuerySchema } from './provider-routes.ts';
export { MappingsQuerySchema, PreviewInputSchema, ProviderMappingsSchema, assertCompiles } from './mapping-routes.ts';
export * from './guards.ts';
export * from './auth.ts';
