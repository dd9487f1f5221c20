/**
 * `scimflow start --demo` (`npm run demo`): seeds a demo directory, provisions it into a loopback SCIM server, shows
 * the run, and on stopping removes what it added. It keeps to what it seeded: it refuses a database whose providers
 * would receive its users, and its provider's scope holds only its own users and groups.
 */
import cliProgress from 'cli-progress';
import {
  createProvider,
  deleteProvider,
  importDirectory,
  inTransaction,
  ProviderInputSchema,
  removeGroup,
  removeUser,
} from '../db/index.ts';
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
/** Starts the demo's SCIM target. */
export type StartDemoTarget = (options: { token: string }) => Promise<DemoTarget>;

/** The demo directory's size: users, and groups they are spread over. */
const DEMO_USERS = 1000;
const DEMO_GROUPS = 50;
/** The group every demo user is in: the demo provider's access group, so only demo users reach its target. */
const DEMO_ACCESS_GROUP = 'demo-everyone';
/** Providers the demo made (a demo killed before it could clean up leaves one behind): not a reason to refuse. */
const DEMO_SLUG_PREFIX = 'demo-';

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

/** The demo directory: numbered users, spread over numbered groups, all of them in the access group. */
function demoDirectory() {
  const users = Array.from({ length: DEMO_USERS }, (_, i) => {
    const n = String(i + 1).padStart(4, '0');
    return {
      username: `demo.user${n}`,
      displayName: `Demo User ${n}`,
      email: `demo.user${n}@example.test`,
      givenName: 'Demo',
      familyName: `User ${n}`,
    };
  });
  const groups = Array.from({ length: DEMO_GROUPS }, (_, g) => ({
    name: `demo-group-${String(g + 1).padStart(2, '0')}`,
    members: users
      .filter((_, i) => i % DEMO_GROUPS === g || (i % 10 === 0 && (i + 1) % DEMO_GROUPS === g))
      .map((u) => u.username),
  }));
  return { users, groups: [...groups, { name: DEMO_ACCESS_GROUP, members: users.map((u) => u.username) }] };
}

/**
 * Refuses a database whose providers (other than the demo's own) would receive the demo's users: the demo writes
 * into the directory, and every provider scoped to "all users" would provision them into its SaaS.
 */
async function refuseSharedDirectory(ctx: RunningProcess): Promise<void> {
  const { rows } = await ctx.db.query<{ slug: string }>(
    `SELECT slug FROM providers WHERE left(slug, length($1)) <> $1 ORDER BY slug LIMIT 5`,
    [DEMO_SLUG_PREFIX],
  );
  if (rows.length === 0) return;
  throw new ScimflowError(
    'ERR_CONFIG',
    `the demo seeds ${DEMO_USERS} users and ${DEMO_GROUPS + 1} groups into the directory, and this database has ` +
      `providers that could receive them (${rows.map((row) => row.slug).join(', ')}): run the demo on a database ` +
      'of its own (DATABASE_URL)',
  );
}

/** Seeds the demo directory, provisions it into a loopback SCIM server, and shows the run. */
export async function runDemo(ctx: RunningProcess, startScimTarget: StartDemoTarget): Promise<void> {
  await refuseSharedDirectory(ctx);
  const target = await startScimTarget({ token: `demo-${Date.now()}` });
  ctx.stoppers.push(() => target.close());
  console.log(`Demo SCIM target on ${target.url}`);

  const directory = demoDirectory();
  const imported = await importDirectory(ctx.db, directory);
  // Removed again when the demo stops, with its provider (registered now: a seed that fails halfway is removed too).
  ctx.stoppers.push(() => removeDemoDirectory(ctx, directory));
  console.log(`Seeded the directory: ${JSON.stringify(imported)}`);
  const { rows: groupRows } = await ctx.db.query<{ id: string; name: string }>(
    'SELECT id, name FROM groups WHERE name = ANY($1)',
    [directory.groups.map((group) => group.name)],
  );
  const accessGroup = groupRows.find((row) => row.name === DEMO_ACCESS_GROUP)!.id;

  const slug = `${DEMO_SLUG_PREFIX}${Date.now().toString(36)}`;
  const provider = await createProvider(
    ctx.db,
    ctx.secrets,
    ProviderInputSchema.parse({
      slug,
      name: 'Demo loopback SCIM target',
      baseUrl: target.url,
      auth: { mode: 'bearer', token: target.token },
      // Only the demo's users and groups: a directory's own users never reach the demo's target.
      scope: {
        accessGroups: [accessGroup],
        groups: groupRows.filter((row) => row.id !== accessGroup).map((row) => row.id),
      },
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

  await showProgress(ctx, runId);
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

/** Shows the run's progress until it ends. */
async function showProgress(ctx: RunningProcess, runId: string): Promise<void> {
  const bar = new cliProgress.SingleBar(
    { format: 'Full sync [{bar}] {value}/{total} objects | {status}', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1, 0, { status: 'starting' });
  for (;;) {
    const { rows } = await ctx.db.query<{ status: string; total: number; processed: number; ended: boolean }>(
      'SELECT status, total, processed, finished_at IS NOT NULL AS ended FROM sync_runs WHERE id = $1',
      [runId],
    );
    const run = rows[0];
    if (run) {
      bar.setTotal(Math.max(run.total, 1));
      bar.update(run.processed, { status: run.status });
      if (run.ended) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  bar.stop();
}

/** Removes the demo's users and groups from the directory, as deleting each would (with their outbox entries). */
async function removeDemoDirectory(ctx: RunningProcess, directory: ReturnType<typeof demoDirectory>): Promise<void> {
  await inTransaction(ctx.db, async (client) => {
    const { rows: groups } = await client.query<{ id: string }>('SELECT id FROM groups WHERE name = ANY($1)', [
      directory.groups.map((group) => group.name),
    ]);
    for (const { id } of groups) await removeGroup(client, id);
    const { rows: users } = await client.query<{ id: string }>('SELECT id FROM users WHERE username = ANY($1)', [
      directory.users.map((user) => user.username),
    ]);
    for (const { id } of users) await removeUser(client, id);
  });
}
