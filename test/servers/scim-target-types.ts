/** Types shared by the SCIM test target's controller (test thread) and its server (worker thread). */
import type { ScimGroup, ScimUser } from '../../scim/index.ts';
import type { JwtRules } from './jwt-verify.ts';

/** How to start a target. */
export interface ScimTargetOptions {
  /** Bearer token the target accepts. @default 'test-token' */
  token?: string;
  /** Serve Groups; false gives a Users-only target whose /ResourceTypes has no Group. @default true */
  groups?: boolean;
  /** Advertise and accept PATCH; false answers PATCH with 501 and advertises patch unsupported. @default true */
  patch?: boolean;
  /**
   * Advertise filtering; false advertises it unsupported (a client then has no way to look an object up) and
   * answers a filtered GET with 400. @default true
   */
  filter?: boolean;
  /** Accept only JWT access tokens from this authorization server (instead of `token`). @default null */
  oauth?: JwtRules | null;
  /**
   * A vendor emulator: the URL of a module whose default export is a {@link VendorEmulator}, and its options (plain
   * data: they cross the worker boundary). @default null (plain SCIMMY)
   */
  emulator?: { module: string; options?: Record<string, unknown> } | null;
}

/** One request the target received; `path` is relative to the SCIM base (`/Users/abc`). */
export interface ReceivedRequest {
  method: string;
  path: string;
  query: Record<string, unknown>;
  body: unknown;
  /** The status answered (0 while the response is still being written). */
  status: number;
  /** When the request arrived, in milliseconds since the epoch. */
  at: number;
  /** The Authorization header it carried, if any (so a test can prove which credential reached this target). */
  authorization?: string;
}

/**
 * A canned answer for the next matching requests. Plain data, because it crosses the worker boundary.
 * Every given criterion must match: `method` (any case), `pathPrefix` (relative to the SCIM base) and
 * `match.userName` (the request body's userName).
 */
export interface FaultRule {
  method?: string;
  pathPrefix?: string;
  match?: { userName?: string };
  status: number;
  /** Response body; a SCIM error naming the status when omitted. */
  body?: unknown;
  headers?: Record<string, string>;
  /** How many requests get this answer. @default 1 */
  times?: number;
}

/** The calls the controller makes on the worker, with their argument and result types. */
export interface TargetCalls {
  users: { args: []; result: ScimUser[] };
  groups: { args: []; result: ScimGroup[] };
  requests: { args: []; result: ReceivedRequest[] };
  writes: { args: []; result: number };
  resetLog: { args: []; result: void };
  failNext: { args: [FaultRule]; result: void };
  seedUser: { args: [Partial<ScimUser> & { userName: string }]; result: ScimUser };
  seedGroup: { args: [Partial<ScimGroup> & { displayName: string }]; result: ScimGroup };
  close: { args: []; result: void };
}

/** A call from the controller. */
export interface TargetCallMessage {
  id: number;
  call: keyof TargetCalls;
  args: unknown[];
}

/** The worker's answer to a call, or its ready notice. */
export type TargetReplyMessage =
  | { type: 'ready'; port: number; basePath: string }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: string };
