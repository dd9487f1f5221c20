// The slice of oidc-provider 9 (which ships no types) the test authorization server uses.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface KoaContextWithOIDC {
    method: string;
    path: string;
    body: unknown;
    status: number;
    oidc: {
      provider: Provider;
      client?: { clientId: string };
      params?: Record<string, unknown>;
      body?: Record<string, unknown>;
    };
  }

  export interface AdapterPayload extends Record<string, unknown> {
    grantId?: string;
    userCode?: string;
    uid?: string;
    consumed?: number;
  }

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface Token {
    save(): Promise<string>;
    expiration: number;
    scope?: string | undefined;
    resourceServer?: unknown;
  }

  export class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: string, listener: (ctx: KoaContextWithOIDC, error?: Error) => void): this;
    registerGrantType(name: string, handler: (ctx: KoaContextWithOIDC) => Promise<void>, params?: string[]): void;
    ClientCredentials: new (init: { client: unknown; scope?: string | undefined }) => Token;
    ResourceServer: new (identifier: string, info: Record<string, unknown>) => unknown;
  }
  export default Provider;
}
