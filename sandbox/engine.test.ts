import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { SCHEMA_ENTERPRISE_USER, SCHEMA_USER, type ScimUser } from '../scim/index.ts';
import type { MappingUser } from './builtin.ts';
import { DEFAULT_USER_MAPPINGS } from './defaults.ts';
import {
  createMappingEngine,
  type MappingDefinition,
  type MappingEvaluationRequest,
  type MappingResult,
} from './engine.ts';
import { SAMPLE_PROVIDER, sampleUser, variedUsers } from '../test/fixtures/directory.ts';
import { DEFAULT_MAPPING_LIMITS, resolveMappingLimits } from './limits.ts';
import { deepMerge } from './merge.ts';

const engine = createMappingEngine();
after(() => engine.disposeAll());
const NOW = '2030-05-06T07:08:09.000Z';
const alice = sampleUser({ username: 'alice', displayName: 'Alice A', email: 'alice@example.com', givenName: 'Alice' });
const bob = sampleUser({ username: 'bob', email: 'bob@example.com' });
const robot = sampleUser({ username: 'robot', kind: 'service_account' });
let versions = 0;

function run(
  mappings: readonly MappingDefinition[],
  users: MappingUser[],
  extra: Partial<MappingEvaluationRequest<'user'>> = {},
): Promise<Array<MappingResult<ScimUser>>> {
  return engine.evaluate({
    key: 'engine-test',
    version: `v${++versions}`,
    objectType: 'user',
    mappings,
    provider: SAMPLE_PROVIDER,
    now: NOW,
    items: users.map((object) => ({ object, link: null })),
    ...extra,
  });
}

function ok(result: MappingResult<ScimUser> | undefined): ScimUser {
  assert.ok(result, 'missing result');
  assert.equal(result.status, 'ok', `expected ok, got ${JSON.stringify(result)}`);
  return (result as { payload: ScimUser }).payload;
}

function failure(result: MappingResult<ScimUser> | undefined) {
  assert.ok(result, 'missing result');
  assert.equal(result.status, 'error', `expected an error, got ${JSON.stringify(result)}`);
  assert.ok(result.status === 'error');
  return result.error;
}

const base: MappingDefinition = {
  name: 'm-base',
  expression: `return { schemas: ['${SCHEMA_USER}'], userName: user.username };`,
};

test('mappings apply in name order whatever order they are given in: last scalar wins, arrays concatenate', async () => {
  const mappings = [
    {
      name: 'c-third',
      expression: `return { title: 'third', emails: [{ value: 'c@x' }], name: { familyName: 'C' } };`,
    },
    base,
    { name: 'a-first', expression: `return { title: 'first', emails: [{ value: 'a@x' }], name: { givenName: 'A' } };` },
    {
      name: 'b-second',
      expression: `return { title: 'second', emails: [{ value: 'b@x' }], name: { givenName: 'B' } };`,
    },
  ];
  const payload = ok((await run(mappings, [alice]))[0]);
  assert.equal(payload.title, 'third');
  assert.deepEqual(payload.emails, [{ value: 'a@x' }, { value: 'b@x' }, { value: 'c@x' }]);
  assert.deepEqual(payload.name, { givenName: 'B', familyName: 'C' });
});

test('the sandbox merges exactly like deepMerge, over many generated results', async () => {
  let seed = 42;
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const value = (depth: number): unknown => {
    const pick = random();
    if (depth > 3 || pick < 0.3) return random() < 0.5 ? Math.floor(random() * 100) : `s${Math.floor(random() * 10)}`;
    if (pick < 0.45) return random() < 0.5;
    if (pick < 0.7) return Array.from({ length: Math.floor(random() * 3) }, () => value(depth + 1));
    return Object.fromEntries(
      Array.from({ length: 1 + Math.floor(random() * 3) }, () => [`k${Math.floor(random() * 4)}`, value(depth + 1)]),
    );
  };
  for (let round = 0; round < 40; round++) {
    const parts = Array.from({ length: 2 + Math.floor(random() * 3) }, () => ({ x: value(0) }));
    const mappings = [
      base,
      ...parts.map((part, i) => ({
        name: `p-${i}`,
        expression: `return JSON.parse(${JSON.stringify(JSON.stringify(part))});`,
      })),
    ];
    const payload = ok((await run(mappings, [alice]))[0]) as ScimUser & { x?: unknown };
    const expected = parts.reduce<unknown>((merged, part) => deepMerge(merged, part), {}) as { x: unknown };
    assert.deepEqual(payload.x, expected.x, `round ${round}: ${JSON.stringify(parts)}`);
  }
});

test('past the shapes an isolate numbers, results of new shapes still arrive whole, as JSON', async () => {
  // 300 users, each with an attribute of its own name: 300 shapes, more than the 256 a mapping set's isolate numbers.
  const users = variedUsers(300);
  const mappings = [base, { name: 'm-own', expression: `return { ['x-' + user.username]: [user.username, 1.5] };` }];
  const version = { version: `shapes-${++versions}` };
  const results = await run(mappings, users, version);
  users.forEach((user, index) => {
    const payload = ok(results[index]) as ScimUser & Record<string, unknown>;
    assert.deepEqual(payload, {
      schemas: [SCHEMA_USER],
      userName: user.username,
      [`x-${user.username}`]: [user.username, 1.5],
    });
  });
  // The same compiled set again: the first users' shapes are numbered, the last users' are not, and all map alike.
  assert.deepEqual(await run(mappings, [...users.slice(0, 3), ...users.slice(-3)], version), [
    ...results.slice(0, 3),
    ...results.slice(-3),
  ]);
});

test('a null attribute removes what an earlier mapping set, and repeated schema URNs are sent once', async () => {
  const mappings = [
    ...DEFAULT_USER_MAPPINGS,
    {
      name: 'z-tidy',
      expression: `return { schemas: ['${SCHEMA_USER}'], displayName: null, name: { givenName: null } };`,
    },
  ];
  const payload = ok((await run(mappings, [alice]))[0]);
  assert.equal('displayName' in payload, false);
  assert.deepEqual(payload.name, { formatted: 'Alice A' });
  assert.deepEqual(payload.schemas, [SCHEMA_USER]);
});

test('SkipObject on create skips the object and names the mapping and reason', async () => {
  const mappings = [
    ...DEFAULT_USER_MAPPINGS,
    {
      name: 'scope',
      expression: `if (user.kind === 'service_account') throw new SkipObject('service accounts stay local');`,
    },
  ];
  const results = await run(mappings, [alice, robot]);
  ok(results[0]);
  assert.deepEqual(results[1], { status: 'skip', mapping: 'scope', reason: 'service accounts stay local' });
});

test('SkipObject on an object with a link skips it too, and mappings see what was last sent', async () => {
  const mappings = [
    ...DEFAULT_USER_MAPPINGS,
    {
      name: 'scope',
      expression: `if (link !== null && link.title === 'frozen') throw SkipObject; return link ? { title: link.title } : null;`,
    },
  ];
  const results = await engine.evaluate({
    key: 'engine-test',
    version: `v${++versions}`,
    objectType: 'user',
    mappings,
    provider: SAMPLE_PROVIDER,
    now: NOW,
    items: [
      { object: alice, link: { userName: 'alice', title: 'frozen' } },
      { object: bob, link: { userName: 'bob', title: 'kept' } },
      { object: robot, link: null },
    ],
  });
  assert.deepEqual(results[0], { status: 'skip', mapping: 'scope' });
  assert.equal(ok(results[1]).title, 'kept');
  assert.equal(ok(results[2]).title, undefined);
});

test('a mapping reaching its link by name, through arguments or by an escaped name sees it; link-blind sets map alike', async () => {
  const reads = (name: string, expression: string) => [...DEFAULT_USER_MAPPINGS, { name, expression }];
  const sets = [
    reads('by-arguments', 'return { title: arguments[2] ? arguments[2].title : "none" };'),
    reads('by-escape', 'return { title: l\\u0069nk ? l\\u0069nk.title : "none" };'),
    reads('by-name', 'return { title: link ? link.title : "none" };'),
  ];
  const items = [
    { object: alice, link: { userName: 'alice', title: 'last' } },
    { object: bob, link: null },
  ];
  for (const mappings of sets) {
    const results = await run(mappings, [], { items });
    assert.equal(ok(results[0]).title, 'last', mappings.at(-1)?.name);
    assert.equal(ok(results[1]).title, 'none', mappings.at(-1)?.name);
  }
  assert.deepEqual(await run(DEFAULT_USER_MAPPINGS, [], { items }), await run(DEFAULT_USER_MAPPINGS, [alice, bob]));
});

test('a batch of 150 or of 1,000, sent in one or many calls, gives each object its own payload and link, in order', async () => {
  // The engine sends a batch to the isolate in one call or several, the objects as one array and their links as
  // another: every object must meet its own link, and its result come back in its place, across every call's seams.
  for (const size of [150, 1000]) {
    const users = variedUsers(size);
    const items = users.map((object, index) => ({
      object,
      link: index % 3 === 0 ? null : { userName: object.username, title: `title-${index}` },
    }));
    const mappings = [
      ...DEFAULT_USER_MAPPINGS,
      { name: 'z-title', expression: 'return link ? { title: link.title } : null;' },
    ];
    // A loose per-object limit: this is about order, and on a starved machine the isolate's clock (wall time in the
    // prebuilt isolated-vm) can put an innocent object of a thousand over 50 ms.
    const limits = { objectTimeoutMs: 10_000, batchTimeoutMs: 600_000 };
    const results = await run(mappings, [], { items, limits });
    assert.equal(results.length, size);
    results.forEach((result, index) => {
      const payload = ok(result);
      assert.equal(payload.externalId, users[index]?.uid, `object ${index} of ${size}`);
      assert.equal(payload.title, index % 3 === 0 ? undefined : `title-${index}`, `object ${index} of ${size}`);
    });
    // Without a mapping that reads links none are sent, and the payloads are the same but for the title.
    const blind = await run(DEFAULT_USER_MAPPINGS, [], { items, limits });
    assert.deepEqual(
      blind.map((result) => ok(result)),
      results.map((result) => {
        const { title: _title, ...payload } = ok(result);
        return payload;
      }),
    );
  }
});

test('an invalid merged result fails only its object, naming the mapping at fault and the path', async () => {
  const mappings = [
    ...DEFAULT_USER_MAPPINGS,
    { name: 'extra-email', expression: `return user.username === 'bob' ? { emails: [{ value: 42 }] } : null;` },
  ];
  const results = await run(mappings, [alice, bob, robot]);
  ok(results[0]);
  ok(results[2]);
  const error = failure(results[1]);
  assert.equal(error.code, 'ERR_MAPPING');
  assert.equal(error.mapping, 'extra-email');
  assert.equal(error.path, 'emails.1.value');
  assert.match(error.message, /^emails\.1\.value: /);
});

test('a missing required attribute fails with its path and no mapping to blame', async () => {
  const results = await run(
    [{ name: 'only-title', expression: `return { schemas: ['${SCHEMA_USER}'], title: 'x' };` }],
    [alice],
  );
  const error = failure(results[0]);
  assert.equal(error.path, 'userName');
  assert.equal(error.mapping, null);
});

test('the core schema URN must be listed, and every extension URN sent must be listed in schemas', async () => {
  const noCore = failure(
    (await run([{ name: 'm', expression: `return { schemas: ['urn:other'], userName: 'x' };` }], [alice]))[0],
  );
  assert.equal(noCore.path, 'schemas');
  const unlisted = failure(
    (
      await run(
        [base, { name: 'n-ext', expression: `return { '${SCHEMA_ENTERPRISE_USER}': { department: 'R&D' } };` }],
        [alice],
      )
    )[0],
  );
  assert.equal(unlisted.path, SCHEMA_ENTERPRISE_USER);
  assert.equal(unlisted.mapping, 'n-ext');
  const listed = ok(
    (
      await run(
        [
          base,
          {
            name: 'n-ext',
            expression: `return { schemas: ['${SCHEMA_ENTERPRISE_USER}'], '${SCHEMA_ENTERPRISE_USER}': { department: 'R&D' } };`,
          },
        ],
        [alice],
      )
    )[0],
  );
  assert.deepEqual(listed.schemas, [SCHEMA_USER, SCHEMA_ENTERPRISE_USER]);
  const badExtension = failure(
    (
      await run(
        [
          base,
          {
            name: 'n-ext',
            expression: `return { schemas: ['${SCHEMA_ENTERPRISE_USER}'], '${SCHEMA_ENTERPRISE_USER}': { manager: { value: 7 } } };`,
          },
        ],
        [alice],
      )
    )[0],
  );
  assert.equal(badExtension.path, `${SCHEMA_ENTERPRISE_USER}.manager.value`);
  assert.equal(badExtension.mapping, 'n-ext');
});

test('a preview returns the payload and each mapping contribution in name order, null for none', async () => {
  const mappings = [...DEFAULT_USER_MAPPINGS, { name: 'z-none', expression: 'return undefined;' }];
  const [result] = await run(mappings, [bob], { withContributions: true });
  assert.ok(result && result.status === 'ok');
  assert.deepEqual(
    result.contributions?.map((c) => c.mapping),
    ['default-user-account', 'default-user-emails', 'default-user-name', 'z-none'],
  );
  assert.deepEqual(result.contributions?.[1]?.value, {
    emails: [{ value: 'bob@example.com', type: 'work', primary: true }],
  });
  assert.equal(result.contributions?.[3]?.value, null);
  assert.equal(result.payload.userName, 'bob');
});

test('a preview of a failing object returns the contributions so far with the error', async () => {
  const mappings = [...DEFAULT_USER_MAPPINGS, { name: 'z-bad', expression: `return { active: 'yes' };` }];
  const [result] = await run(mappings, [bob], { withContributions: true });
  assert.ok(result && result.status === 'error');
  assert.equal(result.error.mapping, 'z-bad');
  assert.equal(result.error.path, 'active');
  assert.deepEqual(result.contributions?.at(-1), { mapping: 'z-bad', value: { active: 'yes' } });
});

test('without a preview, results carry no contributions', async () => {
  const [result] = await run(DEFAULT_USER_MAPPINGS, [bob]);
  assert.ok(result && result.status === 'ok');
  assert.equal('contributions' in result, false);
});

test('the clock is frozen at the given time: now, new Date(), Date.now() and Intl formatting agree', async () => {
  const expression = `return { title: [now, new Date().toISOString(), new Date(Date.now()).toISOString(), String(Date() === new Date().toString()),
    new Intl.DateTimeFormat('en', { timeZone: 'UTC', year: 'numeric' }).format()].join('|') };`;
  // Intl's first use in a fresh isolate loads its locale data: about 50 ms of CPU, as much as the default per-object
  // limit (the test failed by it on a loaded machine). The clock is what is tested here, not the limit.
  const payload = ok((await run([base, { name: 't', expression }], [alice], { limits: { objectTimeoutMs: 5000 } }))[0]);
  assert.equal(payload.title, `${NOW}|${NOW}|${NOW}|true|2030`);
});

test('the helpers are pure and available: lower, upper, trim, coalesce', async () => {
  const expression = `return { title: [lower('AbC'), upper('AbC'), trim('  x  '), coalesce(null, undefined, '', 'first', 'second'), String(coalesce(null))].join('|') };`;
  const payload = ok((await run([base, { name: 't', expression }], [alice]))[0]);
  assert.equal(payload.title, 'abc|ABC|x|first|null');
});

test('the objects a mapping receives are frozen, so one mapping cannot change what the next one sees', async () => {
  const mappings = [base, { name: 'n-mutate', expression: `user.username = 'hacked'; return null;` }];
  const error = failure((await run(mappings, [alice]))[0]);
  assert.equal(error.mapping, 'n-mutate');
  assert.match(error.message, /TypeError: Cannot assign to read only property 'username'/);
});

test('a thrown error is reported with the mapping name and the line it came from', async () => {
  const expression = `const a = 1;\nconst b = null;\nreturn { title: b.title };`;
  const error = failure((await run([base, { name: 'broken', expression }], [alice]))[0]);
  assert.equal(error.mapping, 'broken');
  assert.match(error.message, /^TypeError: Cannot read properties of null \(reading 'title'\) \(line 3\)$/);
});

test('compile names the line and column of a syntax error without running anything', () => {
  assert.deepEqual(engine.compile('return { title: 1 };'), { ok: true });
  const result = engine.compile('const a = 1;\nconst b = ;\nreturn { a };');
  assert.equal(result.ok, false);
  assert.ok(!result.ok);
  assert.equal(result.line, 2);
  assert.equal(result.column, 11);
  assert.match(result.message, /^SyntaxError: Unexpected token ';'/);
  const unterminated = engine.compile('return { title: 1 ');
  assert.ok(!unterminated.ok);
  assert.equal(unterminated.line, 1);
});

test('compile rejects a body that tries to close the function early', () => {
  const result = engine.compile('}); globalThis.x = 1; (function () {');
  assert.ok(!result.ok);
  assert.match(result.message, /one function body/);
});

test('compile accepts the object name the mapping type uses', () => {
  assert.deepEqual(engine.compile('return { displayName: group.name };', 'group'), { ok: true });
  const shadowed = engine.compile('let group = 1; return null;', 'group');
  assert.equal(shadowed.ok, false);
  assert.deepEqual(engine.compile('let group = 1; return null;', 'user'), { ok: true });
});

test('a mapping that does not compile fails every object, naming the mapping and the line', async () => {
  const results = await run([base, { name: 'typo', expression: 'return {\n title: ;\n};' }], [alice, bob]);
  for (const result of results) {
    const error = failure(result);
    assert.equal(error.mapping, 'typo');
    assert.match(error.message, /does not compile: SyntaxError: .* \(line 2\)/);
  }
});

test('a new version or changed text is compiled before use; an unchanged one is reused', async () => {
  const request = (expression: string, version: string) =>
    engine.evaluate({
      key: 'engine-versions',
      version,
      objectType: 'user',
      mappings: [base, { name: 't', expression }],
      provider: SAMPLE_PROVIDER,
      now: NOW,
      items: [{ object: alice, link: null }],
    });
  assert.equal(ok((await request(`return { title: 'one' };`, '1'))[0]).title, 'one');
  assert.equal(ok((await request(`return { title: 'two' };`, '2'))[0]).title, 'two');
  assert.equal(ok((await request(`return { title: 'three' };`, '2'))[0]).title, 'three');
  // What is sent follows the text too: a field the new text reads arrives, though the last text did not read it.
  assert.equal(ok((await request(`return { title: user.email };`, '2'))[0]).title, alice.email);
  assert.equal(ok((await request(`return { title: user.givenName };`, '2'))[0]).title, alice.givenName);
});

test('user and group mapping sets of one provider live side by side in its isolate', async () => {
  const common = { key: 'engine-both', version: '1', provider: SAMPLE_PROVIDER, now: NOW };
  const users = engine.evaluate({
    ...common,
    objectType: 'user',
    mappings: [base],
    items: [{ object: alice, link: null }],
  });
  const groups = engine.evaluate({
    ...common,
    objectType: 'group',
    mappings: [
      {
        name: 'g',
        expression: `return { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: group.name };`,
      },
    ],
    items: [{ object: { id: 'g1', uid: 'u', name: 'Admins', attributes: {} }, link: null }],
  });
  const [[user], [group]] = await Promise.all([users, groups]);
  assert.equal(ok(user).userName, 'alice');
  assert.deepEqual(group, {
    status: 'ok',
    payload: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Admins' },
  });
});

test('an output over maxOutputBytes fails with the path where the limit was crossed', async () => {
  const mappings = [base, { name: 'big', expression: `return { title: 'x'.repeat(5000) };` }];
  const error = failure((await run(mappings, [alice], { limits: { maxOutputBytes: 2048 } }))[0]);
  assert.equal(error.mapping, 'big');
  assert.equal(error.path, 'title');
  assert.match(error.message, /larger than the limit of 2048 bytes/);
});

test('values that are not plain data fail with the path and what they were', async () => {
  const cases: Array<[string, string | undefined, RegExp]> = [
    ['return { title: new Date() };', 'title', /is a Date \(use \.toISOString\(\)\)/],
    ['return { title: new Map() };', 'title', /is a Map/],
    ['return { title: () => 1 };', 'title', /is a function/],
    ['return { title: Symbol("s") };', 'title', /is a Symbol/],
    ['return { title: 10n };', 'title', /is a BigInt/],
    ['return { title: 0 / 0 };', 'title', /NaN, not a finite number/],
    ['return [1, 2];', undefined, /returned an array/],
    ['return "text";', undefined, /returned a string/],
    ['return { then(resolve) { resolve({}) } };', undefined, /Promise or thenable/],
    ['return new (class Account {})();', undefined, /custom prototype/],
  ];
  for (const [expression, path, message] of cases) {
    const error = failure((await run([base, { name: 'odd', expression }], [alice]))[0]);
    assert.equal(error.mapping, 'odd', expression);
    assert.equal(error.path, path, expression);
    assert.match(error.message, message, expression);
  }
});

test('an object the host cannot serialise fails alone', async () => {
  const cyclic = sampleUser({ username: 'cyclic' });
  cyclic.attributes['self'] = cyclic.attributes;
  const mappings = [
    ...DEFAULT_USER_MAPPINGS,
    { name: 'title', expression: 'return { title: user.attributes.title };' },
  ];
  const results = await run(mappings, [alice, cyclic, bob]);
  ok(results[0]);
  ok(results[2]);
  assert.match(failure(results[1]).message, /could not be serialised/);
});

test('only the fields some mapping reads reach the sandbox; a mapping that could reach the whole object gets it', async () => {
  const cyclic = sampleUser({ username: 'cyclic' });
  cyclic.attributes['self'] = cyclic.attributes;
  const huge = sampleUser({ username: 'huge', attributes: { blob: 'x'.repeat(9 * 1024 * 1024) } });
  // The defaults never read attributes: an unserialisable or oversized one is not sent, and the objects map.
  const results = await run(DEFAULT_USER_MAPPINGS, [cyclic, huge]);
  assert.equal(ok(results[0]).userName, 'cyclic');
  assert.equal(ok(results[1]).userName, 'huge');
  const all = Object.keys(alice).sort().join();
  for (const expression of [
    'return { title: Object.keys(user).sort().join() };',
    'return { title: Object.keys(user.valueOf()).sort().join() };',
  ]) {
    assert.equal(ok((await run([base, { name: 'keys', expression }], [alice]))[0]).title, all, expression);
  }
  const owns = { name: 'owns', expression: 'return { title: String(user.hasOwnProperty("kind")) };' };
  assert.equal(ok((await run([base, owns], [alice]))[0]).title, 'true');
});

test('an empty batch gives no results, and no mappings give an error per object', async () => {
  assert.deepEqual(await run(DEFAULT_USER_MAPPINGS, []), []);
  const error = failure((await run([], [alice]))[0]);
  assert.equal(error.mapping, null);
  assert.match(error.message, /produced no object/);
});

test('a malformed request is a TypeError, and out-of-range limits are a validation error', async () => {
  await assert.rejects(run(DEFAULT_USER_MAPPINGS, [alice], { now: 'yesterday' }), TypeError);
  await assert.rejects(run(DEFAULT_USER_MAPPINGS, [alice], { key: '' }), TypeError);
  await assert.rejects(run(DEFAULT_USER_MAPPINGS, [alice], { limits: { memoryMb: 2 } }), { code: 'ERR_VALIDATION' });
});

test('limits default to 64 MB, 50 ms per object, 5 s per batch and 256 KiB of output', () => {
  assert.deepEqual(resolveMappingLimits(undefined), {
    memoryMb: 64,
    objectTimeoutMs: 50,
    batchTimeoutMs: 5000,
    maxOutputBytes: 262144,
  });
  assert.deepEqual(resolveMappingLimits({ memoryMb: 128 }), { ...DEFAULT_MAPPING_LIMITS, memoryMb: 128 });
  assert.throws(() => resolveMappingLimits({ objectTimeoutMs: 0 }), { code: 'ERR_VALIDATION' });
});

test('dispose frees the isolate and the next evaluation builds a new one', async () => {
  const request = () =>
    engine.evaluate({
      key: 'engine-dispose',
      version: '1',
      objectType: 'user',
      mappings: DEFAULT_USER_MAPPINGS,
      provider: SAMPLE_PROVIDER,
      now: NOW,
      items: [{ object: alice, link: null }],
    });
  ok((await request())[0]);
  assert.equal(engine.stats().find((s) => s.key === 'engine-dispose')?.alive, true);
  await engine.dispose('engine-dispose');
  assert.equal(
    engine.stats().find((s) => s.key === 'engine-dispose'),
    undefined,
  );
  ok((await request())[0]);
  assert.equal(engine.stats().find((s) => s.key === 'engine-dispose')?.alive, true);
});

test('prepare builds the isolate before any batch; the batches use it, and still report a mapping that does not compile', async () => {
  const common = {
    key: 'engine-prepare',
    version: '1',
    objectType: 'user',
    provider: SAMPLE_PROVIDER,
    now: NOW,
  } as const;
  const typo = { name: 'typo', expression: 'return {\n title: ;\n};' };
  assert.equal(
    engine.stats().find((s) => s.key === 'engine-prepare'),
    undefined,
  );
  await engine.prepare({ ...common, mappings: DEFAULT_USER_MAPPINGS });
  const prepared = engine.stats().find((s) => s.key === 'engine-prepare');
  assert.equal(prepared?.alive, true);
  assert.ok(prepared.cpuTimeMs > 0, 'the mappings were compiled in the isolate');
  assert.equal(
    ok(
      (
        await engine.evaluate({ ...common, mappings: DEFAULT_USER_MAPPINGS, items: [{ object: alice, link: null }] })
      )[0],
    ).userName,
    'alice',
  );
  // A set that does not compile: preparing it is not where that is reported.
  await engine.prepare({ ...common, version: '2', mappings: [base, typo] });
  const [result] = await engine.evaluate({
    ...common,
    version: '2',
    mappings: [base, typo],
    items: [{ object: bob, link: null }],
  });
  assert.equal(failure(result).mapping, 'typo');
  await assert.rejects(engine.prepare({ ...common, key: '', mappings: [base] }), TypeError);
});

test('beyond maxIsolates the least recently used idle isolate is disposed', async () => {
  const small = createMappingEngine({ maxIsolates: 2 });
  try {
    for (const key of ['p1', 'p2', 'p3']) {
      const items = [{ object: alice, link: null }];
      await small.evaluate({
        key,
        version: '1',
        objectType: 'user',
        mappings: [base],
        provider: SAMPLE_PROVIDER,
        now: NOW,
        items,
      });
    }
    assert.deepEqual(
      small
        .stats()
        .map((s) => s.key)
        .sort(),
      ['p2', 'p3'],
    );
  } finally {
    await small.disposeAll();
  }
});

test('an isolate unused for idleMs is disposed, and the next evaluation builds it again', async () => {
  const quick = createMappingEngine({ idleMs: 50 });
  const once = () =>
    quick.evaluate({
      key: 'idle',
      version: '1',
      objectType: 'user',
      mappings: [base],
      provider: SAMPLE_PROVIDER,
      now: NOW,
      items: [{ object: alice, link: null }],
    });
  try {
    ok((await once())[0]);
    const alive = () => quick.stats().find((s) => s.key === 'idle')?.alive;
    assert.equal(alive(), true);
    for (let waited = 0; waited < 1000 && alive(); waited++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(alive(), false, 'disposed once idle');
    assert.equal(quick.stats().find((s) => s.key === 'idle')?.rebuilds, 0, 'disposed for idleness, not memory');
    ok((await once())[0]);
    assert.equal(alive(), true);
  } finally {
    await quick.disposeAll();
  }
});

test('creating an engine without --no-node-snapshot fails with a configuration error', async () => {
  const script = `import { createMappingEngine } from './sandbox/engine.ts';
try { createMappingEngine(); console.log('created'); } catch (error) { console.log(error.code); }`;
  const env = { ...process.env, NODE_OPTIONS: '' };
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url),
    env,
  });
  assert.equal(stdout.trim(), 'ERR_CONFIG');
});
