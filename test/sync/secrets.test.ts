/** The provider token stays out of everything the worker writes, even when the target echoes it back in an error. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createUser } from '../../db/index.ts';
import { fullSyncRun, incrementalWorld, person } from '../incremental/harness.ts';
import { refuseUserEchoingToken, tokenEcho } from './token-echo.ts';

test('a target that echoes the token in its error bodies gets it into no run, link, event or workflow history', async (t) => {
  const { db, client, target, control, newProvider } = await incrementalWorld(t, { relay: false });
  const user = await createUser(db, person(1));
  await createUser(db, person(2));
  // One user is refused for good (its error is kept on its link); then, on the next sync, the whole run fails.
  await refuseUserEchoingToken(target, user.username);
  const provider = await newProvider();
  const first = await fullSyncRun(db, control, provider);
  assert.equal(first.status, 'succeeded');
  await target.failNext({ method: 'GET', status: 401, body: tokenEcho(target.token, 401), times: 100 });
  const second = await fullSyncRun(db, control, provider);
  assert.equal(second.status, 'failed');

  const { rows } = await db.query<{ text: string }>(
    `SELECT concat_ws(' ',
       (SELECT string_agg(coalesce(error::text, ''), ' ') FROM sync_runs WHERE provider_id = $1),
       (SELECT string_agg(coalesce(last_error::text, ''), ' ') FROM provider_links WHERE provider_id = $1),
       (SELECT string_agg(coalesce(e.detail::text, ''), ' ') FROM sync_events e JOIN sync_runs r ON r.id = e.run_id
         WHERE r.provider_id = $1)) AS text`,
    [provider.id],
  );
  const stored = rows[0]!.text;
  assert.match(stored, /refused/, 'the target’s error was recorded');
  assert.ok(!stored.includes(target.token), `the token was stored: ${stored}`);

  for await (const workflow of client.workflow.list({ query: `ScimProvider = "${provider.slug}"` })) {
    const history = JSON.stringify(await client.workflow.getHandle(workflow.workflowId, workflow.runId).fetchHistory());
    assert.ok(!history.includes(target.token), `the token is in the history of ${workflow.workflowId}`);
  }
});
