/** `scimflow start --demo` (`npm run demo`): seeds a demo directory, provisions it into a loopback SCIM server, shows the run. */
import cliProgress from 'cli-progress';
import { createProvider, deleteProvider, importDirectory, ProviderInputSchema } from '../db/index.ts';
import { temporalUiLink } from '../engine/index.ts';
import { ScimflowError } from '../errors/index.ts';
import type { RunningProcess } from './start.ts';

/** What the demo uses of its SCIM target. */
interface DemoTarget {
  url: string;
  token: string;
  users(): Promise<unknown[]>;
  groups(): Promise<Array<{ members?: unknown[] | undefined }>>;
  close(): Promise<void>;
}
export type StartDemoTarget = (options: { token: string }) => Promise<DemoTarget>;

/**
 * The demo's SCIM target: the independent SCIM server the tests use (SCIMMY, a devDependency, in test/servers).
 * The demo is for a development checkout; a production install (`npm ci --omit=dev`, the Docker image, which
 * leaves test/ out) has no such server, and `--demo` there fails at once with ERR_CONFIG saying so.
 */
export async function loadDemoTarget(): Promise<StartDemoTarget> {
  try {
    return (await import('../test/servers/index.ts')).startScimTarget;
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new ScimflowError(
      'ERR_CONFIG',
      '--demo needs a development checkout: its SCIM target is the test server in test/servers (SCIMMY, a ' +
        'devDependency), which a production install leaves out. Run `npm run demo` in a clone of the repository',
      { cause: error },
    );
  }
}

/** Seeds a demo directory, provisions it into a loopback SCIM server, and shows the run. */
export async function runDemo(ctx: RunningProcess, startScimTarget: StartDemoTarget): Promise<void> {
  const target = await startScimTarget({ token: `demo-${Date.now()}` });
  ctx.stoppers.push(() => target.close());
  console.log(`Demo SCIM target on ${target.url}`);

  const groupCount = 50;
  const users = Array.from({ length: 1000 }, (_, i) => {
    const n = String(i + 1).padStart(4, '0');
    return {
      username: `demo.user${n}`,
      displayName: `Demo User ${n}`,
      email: `demo.user${n}@example.test`,
      givenName: 'Demo',
      familyName: `User ${n}`,
    };
  });
  const groups = Array.from({ length: groupCount }, (_, g) => ({
    name: `demo-group-${String(g + 1).padStart(2, '0')}`,
    members: users
      .filter((_, i) => i % groupCount === g || (i % 10 === 0 && (i + 1) % groupCount === g))
      .map((u) => u.username),
  }));
  const imported = await importDirectory(ctx.db, { users, groups });
  console.log(`Seeded the directory: ${JSON.stringify(imported)}`);

  const slug = `demo-${Date.now().toString(36)}`;
  const provider = await createProvider(
    ctx.db,
    ctx.secrets,
    ProviderInputSchema.parse({
      slug,
      name: 'Demo loopback SCIM target',
      baseUrl: target.url,
      auth: { mode: 'bearer', token: target.token },
    }),
  );
  // Its target lives only as long as this process, so the provider goes with it, else every later start would
  // keep syncing to an endpoint that no longer exists. Only from the database: the embedded Temporal server gets
  // the same Ctrl-C and may be gone already; the next start's reconcile removes its schedule and workflow.
  ctx.stoppers.push(async () => {
    await deleteProvider(ctx.db, provider.id);
  });
  const { runId, workflowId } = await ctx.control.requestFullSync(provider);
  if (ctx.temporal.uiUrl)
    console.log(`Full sync started: ${temporalUiLink(ctx.temporal.uiUrl, ctx.env.TEMPORAL_NAMESPACE, workflowId)}`);

  const bar = new cliProgress.SingleBar(
    { format: 'Full sync [{bar}] {value}/{total} objects | {status}', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1, 0, { status: 'starting' });
  for (;;) {
    const { rows } = await ctx.db.query<{ status: string; total: number; processed: number }>(
      'SELECT status, total, processed FROM sync_runs WHERE id = $1',
      [runId],
    );
    const run = rows[0];
    if (run) {
      bar.setTotal(Math.max(run.total, 1));
      bar.update(run.processed, { status: run.status });
      if (run.status !== 'running') break;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  bar.stop();
  const { rows } = await ctx.db.query(
    'SELECT status, total, created, updated, deleted, unchanged, skipped, failed FROM sync_runs WHERE id = $1',
    [runId],
  );
  const remoteUsers = (await target.users()).length;
  const remoteGroups = await target.groups();
  const remoteMemberships = remoteGroups.reduce((sum, g) => sum + (g.members?.length ?? 0), 0);
  console.log(`Run ${runId}: ${JSON.stringify(rows[0])}`);
  console.log(
    `The target now holds ${remoteUsers} users, ${remoteGroups.length} groups, ${remoteMemberships} memberships.`,
  );
  if (ctx.temporal.uiUrl)
    console.log(
      `Inspect the run in the Temporal UI: ${temporalUiLink(ctx.temporal.uiUrl, ctx.env.TEMPORAL_NAMESPACE, workflowId)}`,
    );
}
