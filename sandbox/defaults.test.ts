import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { defaultGroupPayload, defaultUserPayload } from './builtin.ts';
import { DEFAULT_GROUP_MAPPINGS, DEFAULT_USER_MAPPINGS } from './defaults.ts';
import { createMappingEngine } from './engine.ts';
import { SAMPLE_PROVIDER, sampleUser, variedGroups, variedUsers } from '../test/fixtures/directory.ts';

const engine = createMappingEngine();
after(() => engine.disposeAll());
const NOW = '2026-03-01T12:00:00.000Z';

test('the default user mappings reproduce the built-in user payload exactly, for varied users', async () => {
  const users = [
    ...variedUsers(600),
    sampleUser({ username: 'bare' }),
    sampleUser({ username: 'empty-strings', displayName: '', email: '', givenName: '', familyName: '' }),
    sampleUser({ username: 'robot', kind: 'service_account', active: false, email: 'robot@example.com' }),
    sampleUser({
      username: 'ünïcødé',
      displayName: '山田 太郎',
      givenName: '太郎',
      familyName: '山田',
      email: 'taro@例え.jp',
    }),
  ];
  const results = await engine.evaluate({
    key: 'defaults',
    version: 'v1',
    objectType: 'user',
    mappings: DEFAULT_USER_MAPPINGS,
    provider: SAMPLE_PROVIDER,
    now: NOW,
    items: users.map((object) => ({ object, link: null })),
  });
  assert.equal(results.length, users.length);
  results.forEach((result, i) => {
    const user = users[i];
    assert.ok(user);
    assert.deepEqual(result, { status: 'ok', payload: defaultUserPayload(user) }, `user ${user.username}`);
  });
});

test('the default group mapping reproduces the built-in group payload exactly', async () => {
  const groups = variedGroups(300);
  const results = await engine.evaluate({
    key: 'defaults',
    version: 'v1',
    objectType: 'group',
    mappings: DEFAULT_GROUP_MAPPINGS,
    provider: SAMPLE_PROVIDER,
    now: NOW,
    items: groups.map((object) => ({ object, link: null })),
  });
  assert.equal(results.length, groups.length);
  results.forEach((result, i) => {
    const group = groups[i];
    assert.ok(group);
    assert.deepEqual(result, { status: 'ok', payload: defaultGroupPayload(group) }, `group ${group.name}`);
  });
});

test('the defaults give the same payload when a link from an earlier sync exists', async () => {
  const user = sampleUser({ username: 'linked', email: 'linked@example.com', displayName: 'Linked' });
  const [result] = await engine.evaluate({
    key: 'defaults',
    version: 'v1',
    objectType: 'user',
    mappings: DEFAULT_USER_MAPPINGS,
    provider: SAMPLE_PROVIDER,
    now: NOW,
    items: [{ object: user, link: { ...defaultUserPayload(user), userName: 'old-name' } }],
  });
  assert.deepEqual(result, { status: 'ok', payload: defaultUserPayload(user) });
});

test('every default mapping compiles and the names are unique across user and group mappings', () => {
  const all = [...DEFAULT_USER_MAPPINGS, ...DEFAULT_GROUP_MAPPINGS];
  assert.equal(new Set(all.map((m) => m.name)).size, all.length);
  for (const mapping of DEFAULT_USER_MAPPINGS)
    assert.deepEqual(engine.compile(mapping.expression, 'user'), { ok: true });
  for (const mapping of DEFAULT_GROUP_MAPPINGS)
    assert.deepEqual(engine.compile(mapping.expression, 'group'), { ok: true });
});
