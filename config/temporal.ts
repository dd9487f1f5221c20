/**
 * How scimflow connects to Temporal: plain TCP by default, TLS / mutual TLS and an API key when configured. The
 * variables are the ones the `temporal` CLI reads, so one environment serves both.
 */
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import * as z from 'zod';
import { ScimflowError } from '../errors/index.ts';

const Path = z.string().min(1, 'must be a file path');

/** The Temporal connection variables, merged into the process environment schema. */
export const TemporalEnvShape = {
  /** `true` connects with TLS using the system's CAs; implied by any other TLS variable or an API key. */
  TEMPORAL_TLS: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .transform((value) => value === 'true')
    .optional(),
  /** PEM file of the CA that signed the Temporal frontend's certificate (default: the system's CAs). */
  TEMPORAL_TLS_CA_PATH: Path.optional(),
  /** PEM files of this process's client certificate and key, for mutual TLS; both or neither. */
  TEMPORAL_TLS_CERT_PATH: Path.optional(),
  TEMPORAL_TLS_KEY_PATH: Path.optional(),
  /** The name the frontend's certificate carries, when it differs from the host in TEMPORAL_ADDRESS. */
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  /** API key sent as `Authorization: Bearer …` (Temporal Cloud); always over TLS. */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
};

/** The parsed Temporal variables (plus the address, which config/index.ts already declares). */
export interface TemporalEnv {
  TEMPORAL_ADDRESS?: string | undefined;
  TEMPORAL_TLS?: boolean | undefined;
  TEMPORAL_TLS_CA_PATH?: string | undefined;
  TEMPORAL_TLS_CERT_PATH?: string | undefined;
  TEMPORAL_TLS_KEY_PATH?: string | undefined;
  TEMPORAL_TLS_SERVER_NAME?: string | undefined;
  TEMPORAL_API_KEY?: string | undefined;
}

const TLS_DETAILS = [
  'TEMPORAL_TLS_CA_PATH',
  'TEMPORAL_TLS_CERT_PATH',
  'TEMPORAL_TLS_KEY_PATH',
  'TEMPORAL_TLS_SERVER_NAME',
] as const;

/** Rules across the Temporal variables, reported as issues on the variable at fault. */
export function checkTemporalEnv(env: TemporalEnv, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if ((env.TEMPORAL_TLS_CERT_PATH === undefined) !== (env.TEMPORAL_TLS_KEY_PATH === undefined)) {
    const missing = env.TEMPORAL_TLS_CERT_PATH === undefined ? 'TEMPORAL_TLS_CERT_PATH' : 'TEMPORAL_TLS_KEY_PATH';
    issue(missing, 'mutual TLS needs both TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH');
  }
  if (env.TEMPORAL_TLS === false) {
    for (const name of [...TLS_DETAILS, 'TEMPORAL_API_KEY'] as const) {
      if (env[name] !== undefined) issue(name, 'is set while TEMPORAL_TLS=false; an API key or TLS setting needs TLS');
    }
  }
  if (env.TEMPORAL_ADDRESS === undefined && temporalSecured(env)) {
    issue(
      'TEMPORAL_ADDRESS',
      'must be set when TLS or an API key is configured (the embedded dev server speaks neither)',
    );
  }
}

/** True when any TLS or API-key variable asks for a secured connection. */
function temporalSecured(env: TemporalEnv): boolean {
  return (
    env.TEMPORAL_TLS === true || env.TEMPORAL_API_KEY !== undefined || TLS_DETAILS.some((n) => env[n] !== undefined)
  );
}

/** What `Connection.connect` and `NativeConnection.connect` are given (both take these fields). */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

/** Reads a file's bytes (injected so tests need no files). */
type ReadFile = (path: string) => Buffer;

/** Reads one PEM file named by `variable`, or throws ERR_CONFIG naming the variable (never the file's content). */
function readPem(variable: string, path: string, read: ReadFile): Buffer {
  try {
    return read(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ScimflowError('ERR_CONFIG', `${variable}: cannot read ${path} (${reason})`, { cause: error });
  }
}

/**
 * The connection options for `address` under `env`: TLS when any TLS variable or an API key is set, with the CA,
 * client pair and server name given; the files are read now, so a bad path fails at start, not at first use.
 */
export function temporalConnectionOptions(
  env: TemporalEnv,
  address: string,
  read: ReadFile = (path) => readFileSync(path),
): TemporalConnectionOptions {
  if (!temporalSecured(env)) return { address };
  const tls: TLSConfig = {};
  if (env.TEMPORAL_TLS_CA_PATH !== undefined)
    tls.serverRootCACertificate = readPem('TEMPORAL_TLS_CA_PATH', env.TEMPORAL_TLS_CA_PATH, read);
  if (env.TEMPORAL_TLS_CERT_PATH !== undefined && env.TEMPORAL_TLS_KEY_PATH !== undefined) {
    tls.clientCertPair = {
      crt: readPem('TEMPORAL_TLS_CERT_PATH', env.TEMPORAL_TLS_CERT_PATH, read),
      key: readPem('TEMPORAL_TLS_KEY_PATH', env.TEMPORAL_TLS_KEY_PATH, read),
    };
  }
  if (env.TEMPORAL_TLS_SERVER_NAME !== undefined) tls.serverNameOverride = env.TEMPORAL_TLS_SERVER_NAME;
  return { address, tls, ...(env.TEMPORAL_API_KEY === undefined ? {} : { apiKey: env.TEMPORAL_API_KEY }) };
}

/** A one-line description of how the connection is secured, safe to log (no key, no file content). */
export function describeTemporalSecurity(options: TemporalConnectionOptions): string {
  if (!options.tls) return 'plaintext';
  const parts = [options.tls.clientCertPair ? 'mutual TLS' : 'TLS'];
  if (options.tls.serverRootCACertificate) parts.push('own CA');
  if (options.apiKey) parts.push('API key');
  return parts.join(', ');
}
