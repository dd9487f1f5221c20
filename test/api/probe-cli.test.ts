import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startScimTarget } from '../servers/index.ts';
import { runScimflow, startScimflow } from '../support/cli.ts';

test('scimflow probe reads a SCIM endpoint without writing, and with --write leaves nothing behind', async (t) => {
  const target = await startScimTarget();
  t.after(() => target.close());
  await target.seedUser({ userName: 'ada@example.test', externalId: 'ext-ada' });
  const env = { PROBE_TOKEN: target.token };

  const read = await runScimflow(['probe', target.url, '--token-env', 'PROBE_TOKEN'], { env });
  assert.equal(read.code, 0, read.stderr);
  assert.match(read.stdout, /^plugin +scim2 \(suggested by the URL: scim2\)$/m);
  assert.match(read.stdout, /^filter by userName +1 match\(es\)$/m);
  assert.match(read.stdout, /^filter by externalId +1 match\(es\)$/m);
  assert.match(read.stdout, /^filter with or +accepted$/m);
  assert.match(read.stdout, /^GET \/ServiceProviderConfigs +SCIM GET \/ServiceProviderConfigs failed with 404/m);
  assert.equal(await target.writes(), 0, 'a read-only probe sends no write');

  // The AWS plugin wants AWS's SCIM endpoint form, /TENANT_ID/scim/v2: the probe says so instead of probing blindly.
  const aws = await runScimflow(['probe', target.url, '--token-env', 'PROBE_TOKEN', '--plugin', 'aws'], { env });
  assert.equal(aws.code, 0, aws.stderr);
  assert.match(
    aws.stdout,
    /^base URL +aws refuses it: the tenant id is missing from the path; use .*TENANT_ID\/scim\/v2$/m,
  );
  assert.match(aws.stdout, /^capabilities \(plugin view\) +plugin aws: the tenant id is missing/m);

  const written = await runScimflow(['probe', target.url, '--token-env', 'PROBE_TOKEN', '--write'], { env });
  assert.equal(written.code, 0, written.stderr);
  for (const step of [
    'create user',
    'replace user',
    'create group with a member',
    'remove the member',
    'deactivate user',
  ])
    assert.match(written.stdout, new RegExp(`^${step} +ok`, 'm'), step);
  assert.deepEqual(
    (await target.users()).map((user) => user.userName),
    ['ada@example.test'],
    'the throw-away user is gone',
  );
  assert.deepEqual(await target.groups(), [], 'the throw-away group is gone');
});

test('scimflow probe of a target that refuses its token prints what it found and exits 1 with the error', async (t) => {
  const target = await startScimTarget();
  t.after(() => target.close());

  const probed = await runScimflow(['probe', target.url, '--token-env', 'PROBE_TOKEN'], {
    env: { PROBE_TOKEN: 'not-the-token' },
  });
  assert.equal(probed.code, 1, probed.stdout);
  assert.match(probed.stdout, /^list users +SCIM GET \/Users failed with 401/m);
  assert.match(probed.stderr, /^error: ERR_SCIM_UNAUTHORIZED: SCIM GET \/Users failed with 401/m);
});

test('scimflow whose reader stops early (as `| head` does) ends quietly, without a stack trace', async (t) => {
  const target = await startScimTarget();
  t.after(() => target.close());
  const probe = startScimflow(['probe', target.url, '--token-env', 'PROBE_TOKEN'], {
    env: { PROBE_TOKEN: target.token },
  });
  probe.child.stdout!.destroy();

  const ended = await probe.done;
  assert.equal(ended.stderr, '');
  assert.equal(ended.code, 0);
});
