/**
 * The file `scimflow apply` reads: providers and mappings declared by name, in YAML or JSON (YAML is a superset),
 * with secrets named by environment variable only.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import * as z from 'zod';
import { MappingInputSchema, ProviderInputSchema, ProviderScopeSchema } from '../db/index.ts';
import { ValidationError } from '../errors/index.ts';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** How a declared provider authenticates: a bearer token from an environment variable, or none. */
const AuthSchema = z
  .strictObject({
    mode: z.enum(['bearer', 'none']).default('bearer'),
    /** The environment variable holding the bearer token when `apply` runs. */
    tokenEnv: z.string().regex(ENV_NAME, 'must be an environment variable name').optional(),
    /** Never allowed: declared only to refuse it with a message that says what to do instead. */
    token: z.unknown().optional(),
  })
  .superRefine((auth, ctx) => {
    if (auth.token !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['token'],
        message:
          'secrets are never written in the file: put the token in an environment variable and name it with tokenEnv',
      });
    }
    if (auth.mode === 'bearer' && auth.tokenEnv === undefined && auth.token === undefined)
      ctx.addIssue({ code: 'custom', path: ['tokenEnv'], message: 'bearer auth needs tokenEnv (or mode: none)' });
    if (auth.mode === 'none' && auth.tokenEnv !== undefined)
      ctx.addIssue({ code: 'custom', path: ['tokenEnv'], message: 'mode none takes no token' });
  });

/** A provider's scope with groups given by name (an existing group's id is accepted too). */
const ScopeSchema = ProviderScopeSchema.extend({
  accessGroups: z.array(z.string().min(1)).default([]),
  groups: z.array(z.string().min(1)).optional(),
});

const ProviderShape = ProviderInputSchema.shape;

/** One declared provider: the API's provider fields, scope by group names, auth by variable, its mapping set. */
const ApplyProviderSchema = ProviderInputSchema.omit({ auth: true, scope: true, name: true }).extend({
  name: ProviderShape.name.optional(),
  auth: AuthSchema,
  scope: ScopeSchema.default({ includeServiceAccounts: false, accessGroups: [] }),
  /** The provider's whole mapping set by name, in any order; when left out, its mappings are left as they are. */
  mappings: z.array(z.string().min(1)).max(1000).optional(),
});

/** One declared mapping: its expression inline or in a file next to the apply file. */
const ApplyMappingSchema = MappingInputSchema.omit({ expression: true })
  .extend({ expression: MappingInputSchema.shape.expression.optional(), file: z.string().min(1).optional() })
  .refine((m) => (m.expression === undefined) !== (m.file === undefined), {
    message: 'give exactly one of expression and file',
  });

/** The whole file. Objects not declared in it are left alone. */
export const ApplyFileSchema = z
  .strictObject({
    mappings: z.array(ApplyMappingSchema).default([]),
    providers: z.array(ApplyProviderSchema).default([]),
  })
  .superRefine((file, ctx) => {
    const unique = (key: 'mappings' | 'providers', names: string[]) => {
      const seen = new Set<string>();
      names.forEach((name, i) => {
        if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [key, i], message: `${name} is declared twice` });
        seen.add(name);
      });
    };
    unique(
      'mappings',
      file.mappings.map((m) => m.name),
    );
    unique(
      'providers',
      file.providers.map((p) => p.slug),
    );
  });
export type ApplyFile = z.infer<typeof ApplyFileSchema>;
export type ApplyProvider = ApplyFile['providers'][number];
export type ApplyMapping = ApplyFile['mappings'][number];

/** A dotted issue path, with a provider's or mapping's index replaced by its name when the file gives one. */
function issuePath(raw: unknown, path: readonly PropertyKey[]): string {
  const parts = path.map(String);
  const [list, index] = path;
  if ((list === 'providers' || list === 'mappings') && typeof index === 'number') {
    const item = (raw as Record<string, unknown[]> | null)?.[list]?.[index] as Record<string, unknown> | undefined;
    const name = list === 'providers' ? item?.['slug'] : item?.['name'];
    if (typeof name === 'string' && name !== '') parts[1] = name;
  }
  return parts.join('.');
}

/** Reads and validates an apply file, or throws one ValidationError naming every bad field by its path. */
export async function loadApplyFile(path: string): Promise<ApplyFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ValidationError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`, []);
  }
  const document = parseDocument(text, { prettyErrors: false });
  if (document.errors.length > 0) {
    const issues = document.errors.map((error) => ({
      path: error.linePos ? `line ${error.linePos[0].line}` : '',
      message: error.message.split('\n')[0] ?? error.code,
    }));
    throw new ValidationError(`${path} is not valid YAML or JSON`, issues);
  }
  const raw: unknown = document.toJS() ?? {};
  const parsed = ApplyFileSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: issuePath(raw, [...issue.path, key]), message: 'is not a known field' }))
      : [{ path: issuePath(raw, issue.path), message: issue.message }],
  );
  throw new ValidationError(`${path} is not a valid apply file`, issues);
}
