export { buildProgram, runCli } from './program.ts';
export { ApiClientError, createApiClient, DEFAULT_API_URL, type ApiClient, type ApiIssue } from './api-client.ts';
