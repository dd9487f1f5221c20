/* eslint-disable @typescript-eslint/no-unsafe-member-access -- SCIM bodies are untyped JSON: the assertions are what check their shape */
/**
 * Okta's "SCIM 2.0 SPEC Test" (the Runscope/BlazeMeter suite Okta asks OIN integrations to pass), step by step
 * against a running source. Steps and checks follow the suite as described in Okta's "Test your SCIM API" guide
 * (developer.okta.com/docs/guides/scim-provisioning-integration-test); bodies follow Okta's SCIM 2.0 reference
 * (developer.okta.com/docs/reference/scim/scim-20, "Create the User").
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startSourceHarness, type SourceHarness, type TestSource } from './harness.ts';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

describe("Okta's SCIM 2.0 SPEC Test, run against a source", () => {
  let harness: SourceHarness;
  let okta: TestSource;
  // The suite's initial script: a random userName, the same in capitals, and an id that does not exist.
  const randomUsername = `okta.${randomUUID().slice(0, 8)}@example.com`;
  const randomUsernameCaps = randomUsername.toUpperCase();
  const userIdThatDoesNotExist = `010101${randomUUID().replace(/-/g, '').slice(0, 14)}`;
  let createdId = '';

  before(async () => {
    harness = await startSourceHarness();
    okta = await harness.addSource({ slug: 'okta' });
    // The suite expects at least one user to exist before it starts.
    const seeded = await okta.scim('POST', '/Users', {
      schemas: [USER_SCHEMA],
      userName: 'seed.user@example.com',
      name: { givenName: 'Seed', familyName: 'User' },
      emails: [{ primary: true, value: 'seed.user@example.com', type: 'work' }],
      active: true,
    });
    assert.equal(seeded.status, 201);
  });
  after(() => harness?.close());

  test('Required Test: Test Users endpoint — a list with count=1&startIndex=1 answers a ListResponse', async () => {
    const response = await okta.scim('GET', '/Users?count=1&startIndex=1');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/scim\+json/);
    assert.deepEqual(response.body['schemas'], [LIST_SCHEMA]);
    assert.equal(typeof response.body['totalResults'], 'number');
    assert.equal(response.body['startIndex'], 1);
    assert.equal(response.body['itemsPerPage'], 1);
    assert.equal(response.body['Resources'].length, 1);
  });

  test('Required Test: Get Users/{{id}} — the first listed user has id, userName, name, emails and active', async () => {
    const listed = await okta.scim('GET', '/Users?count=1&startIndex=1');
    const id = listed.body['Resources'][0].id as string;
    const response = await okta.scim('GET', `/Users/${id}`);
    assert.equal(response.status, 200);
    const user = response.body;
    assert.equal(user['id'], id);
    assert.equal(typeof user['userName'], 'string');
    assert.equal(typeof user['name'].givenName, 'string');
    assert.equal(typeof user['name'].familyName, 'string');
    assert.equal(typeof user['emails'][0].value, 'string');
    assert.equal(typeof user['active'], 'boolean');
  });

  test('Required Test: Test invalid User by username — filtering on a missing userName finds 0 users', async () => {
    const filter = encodeURIComponent(`userName eq "${randomUsername}"`);
    const response = await okta.scim('GET', `/Users?filter=${filter}&startIndex=1&count=100`);
    assert.equal(response.status, 200);
    assert.deepEqual(response.body['schemas'], [LIST_SCHEMA]);
    assert.equal(response.body['totalResults'], 0);
    assert.deepEqual(response.body['Resources'], []);
  });

  test('Required Test: Test invalid User by ID — an unknown id answers 404 with a SCIM error body', async () => {
    const response = await okta.scim('GET', `/Users/${userIdThatDoesNotExist}`);
    assert.equal(response.status, 404);
    assert.deepEqual(response.body['schemas'], [ERROR_SCHEMA]);
    assert.equal(response.body['status'], '404');
    assert.equal(typeof response.body['detail'], 'string');
  });

  test('Required Test: Make sure random user does not exist, then Create Okta user with realistic values', async () => {
    const filter = encodeURIComponent(`userName eq "${randomUsername}"`);
    assert.equal((await okta.scim('GET', `/Users?filter=${filter}`)).body['totalResults'], 0);
    const response = await okta.scim('POST', '/Users', {
      schemas: [USER_SCHEMA],
      userName: randomUsername,
      name: { givenName: 'Test', familyName: 'User' },
      emails: [{ primary: true, value: randomUsername, type: 'work' }],
      displayName: 'Test User',
      locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7',
      groups: [],
      password: '1mz050nq',
      active: true,
    });
    assert.equal(response.status, 201);
    createdId = response.body['id'] as string;
    assert.ok(createdId);
    assert.equal(response.body['active'], true);
    assert.equal(response.body['userName'], randomUsername);
    assert.equal(response.body['name'].familyName, 'User');
    assert.equal(response.body['name'].givenName, 'Test');
    assert.equal(response.body['password'], undefined, 'a password is never returned (nor stored)');
    assert.equal(response.headers.get('location'), `${okta.base}/Users/${createdId}`);
  });

  test('Required Test: Verify that user was created — GET by id returns what was sent', async () => {
    const response = await okta.scim('GET', `/Users/${createdId}`);
    assert.equal(response.status, 200);
    assert.equal(response.body['userName'], randomUsername);
    assert.equal(response.body['externalId'], '00ujl29u0le5T6Aj10h7');
    assert.equal(response.body['emails'][0].value, randomUsername);
  });

  test('Required Test: Expect failure when recreating user with same values — 409', async () => {
    const response = await okta.scim('POST', '/Users', {
      schemas: [USER_SCHEMA],
      userName: randomUsername,
      name: { givenName: 'Test', familyName: 'User' },
      emails: [{ primary: true, value: randomUsername, type: 'work' }],
      active: true,
    });
    assert.equal(response.status, 409);
    assert.equal(response.body['scimType'], 'uniqueness');
    assert.deepEqual(response.body['schemas'], [ERROR_SCHEMA]);
  });

  test('Required Test: Username Case Sensitivity Check — the userName in capitals finds the user', async () => {
    const filter = encodeURIComponent(`userName eq "${randomUsernameCaps}"`);
    const response = await okta.scim('GET', `/Users?filter=${filter}`);
    assert.equal(response.status, 200);
    assert.equal(response.body['totalResults'], 1);
    assert.equal(response.body['Resources'][0].id, createdId);
  });

  test('Optional Test: Verify Groups endpoint — GET /Groups answers a ListResponse', async () => {
    const response = await okta.scim('GET', '/Groups?startIndex=1&count=100');
    assert.equal(response.status, 200);
    assert.deepEqual(response.body['schemas'], [LIST_SCHEMA]);
    assert.equal(response.body['totalResults'], 0);
  });

  test('Required Test: Check status 401 — a wrong token answers 401 with a SCIM error body', async () => {
    const response = await okta.scim('GET', '/Users', undefined, { token: 'not-the-token' });
    assert.equal(response.status, 401);
    assert.deepEqual(response.body['schemas'], [ERROR_SCHEMA]);
    assert.equal(response.body['status'], '401');
    const missing = await okta.scim('GET', '/Users', undefined, { token: null });
    assert.equal(missing.status, 401);
    assert.equal(missing.body['status'], '401');
  });
});
