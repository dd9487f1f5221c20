/**
 * Vendor plugins against their emulators (test/emulators): (1) the Slack emulator enforcing Slack's documented
 * limits, a full sync of BENCH_SLACK_USERS (2,000) users on the slack plugin's own pacing: achieved write rate ÷ the
 * rate Slack allows for user creation (180/min), and the share of requests answered 429; BENCH_SLACK_SCALE (1) runs
 * Slack's rates that many times faster, the plugin's pacing with them. (2) the AWS emulator: a group of 1,000 members
 * created, then changed by 300 members (150 out, 150 in): group requests sent ÷ the fewest AWS's limits allow (100
 * members at create and per PATCH), and the time. BENCH_VENDORS=slack or aws runs one of the two.
 */
import { createGroup, createProvider, createUser, type Db } from '../db/index.ts';
import { createPluginRegistry, createScimPlugin, type PluginRegistry } from '../plugins/index.ts';
import { slackVendor } from '../plugins/slack/index.ts';
import { startScimTarget, type ScimTarget } from '../test/servers/index.ts';
import { createTestDatabase } from '../test/support/db.ts';
import { startTestEngine } from '../test/support/engine.ts';
import { testProviderInput } from '../test/support/providers.ts';
import type { BenchRow } from './full-sync.ts';

const emulator = (name: string) => new URL(`../test/emulators/${name}.ts`, import.meta.url).href;

async function seedUsers(db: Db, count: number, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const n = `${prefix}${i}`;
    const user = await createUser(db, {
      username: `${n}@example.test`,
      displayName: `User ${n}`,
      email: `${n}@example.test`,
      givenName: 'User',
      familyName: n,
      active: true,
      kind: 'internal',
      attributes: {},
    });
    ids.push(user.id);
  }
  return ids;
}

const ratio = (value: number): string => value.toFixed(3);

/** The built-in plugins, the slack plugin's documented rate (not its burst) `scale` times faster, as the emulator's. */
function withScaledSlack(scale: number): PluginRegistry {
  const rateLimits = {
    ...slackVendor.rateLimits!,
    requestsPerSecond: slackVendor.rateLimits!.requestsPerSecond * scale,
  };
  return new Map([...createPluginRegistry(), ['slack', createScimPlugin({ ...slackVendor, rateLimits })]]);
}

/** Runs both measurements and returns their rows. */
export async function runVendorsBench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const testDb = await createTestDatabase();
  const scale = Number(process.env['BENCH_SLACK_SCALE'] ?? 1);
  const engine = await startTestEngine({ db: testDb.db, plugins: withScaledSlack(scale) });
  const targets: ScimTarget[] = [];
  try {
    const only = process.env['BENCH_VENDORS'];
    if (only !== 'aws') {
      const users = Number(process.env['BENCH_SLACK_USERS'] ?? 2000);
      const slack = await startScimTarget({ emulator: { module: emulator('slack'), options: { rateScale: scale } } });
      targets.push(slack);
      await seedUsers(testDb.db, users, 's');
      const slackProvider = await createProvider(
        testDb.db,
        engine.secrets,
        testProviderInput(slack, 'slack', {
          plugin: 'slack',
          pluginOptions: { org: 'bench' },
          concurrency: 4,
          pageSize: 100,
          scope: { includeServiceAccounts: false, accessGroups: [] },
          rateLimit: null,
        }),
      );
      const started = performance.now();
      await engine.fullSync(slackProvider);
      const seconds = (performance.now() - started) / 1000;
      const log = await slack.requests();
      const written = log.filter((request) => request.method !== 'GET' && request.status < 300);
      const writes = written.length;
      const refused = log.filter((request) => request.status === 429).length;
      const allowed = (180 * scale) / 60;
      // From the first write to the last: the stretch the write limit governs (the sync's start and end are not).
      const windowSeconds = ((written.at(-1)?.at ?? 0) - (written[0]?.at ?? 0)) / 1000;
      const gaps = written
        .slice(1)
        .map((request, i) => request.at - written[i]!.at)
        .sort((a, b) => a - b);
      const gap = (q: number) => gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))] ?? 0;
      rows.push(
        {
          variant: `slack: users on the target / in the directory`,
          value: `${(await slack.users()).length} / ${users}`,
        },
        { variant: 'slack: requests (reads + writes), seconds', value: `${log.length}, ${seconds.toFixed(1)}` },
        { variant: `slack: achieved write rate (writes/s)`, value: (writes / seconds).toFixed(2) },
        { variant: `slack: achieved ÷ allowed (${allowed}/s, POST /Users)`, value: ratio(writes / seconds / allowed) },
        {
          variant: 'slack: achieved ÷ allowed from the first write to the last',
          value: ratio((writes - 1) / windowSeconds / allowed),
        },
        { variant: 'slack: ms between writes, p50 / p90 / max', value: `${gap(0.5)} / ${gap(0.9)} / ${gap(1)}` },
        { variant: 'slack: share of requests answered 429', value: ratio(refused / log.length) },
      );
    }

    if (only !== 'slack') {
      const aws = await startScimTarget({ emulator: { module: emulator('aws') } });
      targets.push(aws);
      const members = await seedUsers(testDb.db, 1150, 'a');
      const group = await createGroup(testDb.db, { name: 'big-aws', attributes: {}, members: members.slice(0, 1000) });
      const awsProvider = await createProvider(
        testDb.db,
        engine.secrets,
        testProviderInput(aws, 'aws', {
          plugin: 'aws',
          concurrency: 4,
          pageSize: 100,
          // Only the bench's AWS users (the access group) and its one group.
          scope: { includeServiceAccounts: false, accessGroups: [group.id], groups: [group.id] },
        }),
      );
      let t0 = performance.now();
      await engine.fullSync(awsProvider);
      const createMs = performance.now() - t0;
      const groupWrites = async () =>
        (await aws.requests()).filter((r) => r.path.startsWith('/Groups') && r.method !== 'GET' && r.status < 300)
          .length;
      const createRequests = await groupWrites();
      await aws.resetLog();
      await testDb.db.query('DELETE FROM group_members WHERE group_id = $1 AND user_id = ANY($2)', [
        group.id,
        members.slice(0, 150),
      ]);
      await testDb.db.query('INSERT INTO group_members (group_id, user_id) SELECT $1, unnest($2::uuid[])', [
        group.id,
        members.slice(1000, 1150),
      ]);
      t0 = performance.now();
      await engine.fullSync(awsProvider);
      const changeMs = performance.now() - t0;
      const changeRequests = await groupWrites();
      const stored = (await aws.groups()).find((candidate) => candidate.displayName === 'big-aws');
      rows.push(
        { variant: 'aws: members on the target after the change / wanted', value: `${stored?.members?.length} / 1000` },
        { variant: 'aws: create 1,000 members: group requests / minimum (10)', value: `${createRequests} / 10` },
        { variant: 'aws: change 300 members: group requests / minimum (3)', value: `${changeRequests} / 3` },
        {
          variant: 'aws: full sync with the create, s (1,150 users in the directory)',
          value: (createMs / 1000).toFixed(1),
        },
        { variant: 'aws: full sync with the change, s', value: (changeMs / 1000).toFixed(1) },
      );
    }
  } finally {
    for (const target of targets) await target.close();
    await engine.shutdown();
    await testDb.drop();
  }
  return rows;
}
