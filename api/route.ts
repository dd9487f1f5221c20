import type * as z from 'zod';
import type { Role } from '../db/index.ts';
import type { Caller } from './auth.ts';

/** A zod schema with the name it has in the OpenAPI document's components. */
export interface Named<S extends z.ZodType = z.ZodType> {
  name: string;
  schema: S;
}

/** Names a schema for the OpenAPI document. */
export function named<S extends z.ZodType>(name: string, schema: S): Named<S> {
  return { name, schema };
}

/** What a route handler receives: the parsed body and query, the raw path parameters and who is calling. */
export interface RouteInput<B, Q> {
  body: B;
  query: Q;
  params: Record<string, string>;
  /** The authenticated caller; null only on `public` routes. */
  caller: Caller | null;
  /** The request body unread, on a `streamed` route (null when the request has none); null on the others. */
  stream: ReadableStream<Uint8Array> | null;
}

/** Who may call a route: the weakest role that may, or `public` (only outside `/api/v1`). */
export type RouteAccess = Role | 'public';

/** HTTP methods the API uses. */
export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One route: how it is served and how the OpenAPI document describes it, from the same declaration. */
export interface RouteSpec<B, Q> {
  method: Method;
  /** Hono path syntax (`/users/:id`), relative to the API root. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  /** The weakest role that may call it; required, so no route is added without deciding who may call it. */
  role: RouteAccess;
  /** Largest request body, when the API-wide limit does not fit (a bulk import). */
  maxBodyBytes?: number;
  /** Success status; 204 sends no body. */
  status: 200 | 201 | 202 | 204;
  body?: Named<z.ZodType<B>>;
  /**
   * The body is streamed, not read: newline-delimited JSON (`application/x-ndjson`), each line described by `lines`
   * and checked by the handler, which gets it as `stream`. The route sets no limit on the whole body.
   */
  streamed?: { lines: Named };
  /** An object schema of the query string parameters. */
  query?: z.ZodType<Q>;
  response?: Named;
  /** The route can answer 409 (a uniqueness rule or a state that forbids the action). */
  conflicts?: boolean;
  handle(input: RouteInput<B, Q>): Promise<unknown>;
}

/** A route with its types erased, as the app and the document generator hold them. */
export type ApiRoute = RouteSpec<unknown, unknown>;

/** Declares a route; the body and query types flow from the schemas into the handler. */
export function defineRoute<B = undefined, Q = undefined>(spec: RouteSpec<B, Q>): ApiRoute {
  return spec;
}
