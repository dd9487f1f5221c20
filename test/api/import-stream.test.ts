import assert from 'node:assert/strict';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createApi, startApiServer, type ApiServer } from '../../api/index.ts';
import { createSecretBox, generateSecretKey, type StreamImportCounts } from '../../db/index.ts';
import { eventually } from '../incremental/harness.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { createTestToken, recordingSyncControl, validatePluginOptions, type ErrorBody } from './api-harness.ts';

/** Rows per transaction on this server: small, so a few thousand lines take many batches. */
const BATCH_ROWS = 100;
const MAX_LINE_BYTES = 4096;

const userLine = (i: number) => JSON.stringify({ user: { username: `u${i}`, email: `u${i}@example.test` } });
const usersLines = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, k) => userLine(from + k)).join('\n') + '\n';
/** What `lines` new users written in `batches` transactions, and nothing else, count as. */
const usersWritten = (lines: number, batches: number): StreamImportCounts => ({
  users: { created: lines, updated: 0, unchanged: 0 },
  groups: { created: 0, updated: 0, unchanged: 0 },
  members: { added: 0, removed: 0 },
  lines,
  batches,
});

/** A streamed import under way: lines can be written to it bit by bit, and `answer` is the server's response. */
interface OpenImport {
  write(text: string): Promise<void>;
  end(): void;
  answer: Promise<{ status: number; body: unknown }>;
}

/** Opens `POST /api/v1/import/stream` over HTTP (chunked, as a client streaming a file sends it). */
function openImport(server: ApiServer, token: string | null, contentType = 'application/x-ndjson'): OpenImport {
  let req!: ClientRequest;
  const answer = new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    req = httpRequest(
      `${server.url}/api/v1/import/stream`,
      {
        method: 'POST',
        headers: {
          'content-type': contentType,
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) });
        });
      },
    );
    // Writing after the server has answered and closed is no failure of the import: the answer says what happened.
    req.on('error', (error) => (req.writableEnded ? undefined : reject(error)));
  });
  return {
    write: (text) => new Promise((resolve) => (req.write(text) ? resolve() : req.once('drain', () => resolve()))),
    end: () => req.end(),
    answer,
  };
}

async function sendImport(server: ApiServer, token: string | null, text: string, contentType?: string) {
  const open = openImport(server, token, contentType);
  await open.write(text);
  open.end();
  return open.answer;
}

describe('streamed directory import (POST /api/v1/import/stream)', () => {
  let database: TestDatabase;
  let server: ApiServer;
  let admin: string;
  let viewer: string;

  before(async () => {
    database = await createTestDatabase();
    const app = createApi({
      db: database.db,
      secrets: createSecretBox(generateSecretKey()),
      sync: recordingSyncControl(),
      validatePluginOptions,
      policy: { importBatchRows: BATCH_ROWS, importMaxLineBytes: MAX_LINE_BYTES },
    });
    server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
    admin = await createTestToken(database.db, 'admin');
    viewer = await createTestToken(database.db, 'viewer');
  });
  after(async () => {
    await server.close();
    await database.drop();
  });
  beforeEach(async () => {
    await database.db.query('DELETE FROM group_members');
    await database.db.query('DELETE FROM groups');
    await database.db.query('DELETE FROM users');
  });

  const count = async (sql: string, params: unknown[] = []) =>
    Number((await database.db.query<{ n: string }>(sql, params)).rows[0]!.n);
  const users = () => count('SELECT count(*) AS n FROM users');
  /** The usernames of every group's members, in order. */
  const members = async () =>
    (
      await database.db.query<{ username: string }>(
        `SELECT u.username FROM group_members gm JOIN users u ON u.id = gm.user_id ORDER BY u.username`,
      )
    ).rows.map((row) => row.username);
  /** Imports users u0-u149, then `line` as line 151, then users from u150 to before `upTo`: the status and the error. */
  const importAt151 = async (line: string, upTo: number) => {
    const { status, body } = await sendImport(server, admin, usersLines(0, 150) + line + usersLines(150, upTo));
    return { status, error: (body as ErrorBody).error, body };
  };

  test('a streamed import of 3,000 users is written in batches while the stream is still being sent', async () => {
    const open = openImport(server, admin);
    await open.write(usersLines(0, 1000));
    // The request is still open: the server has written batches of what it read, not waited for the whole body.
    await eventually(
      'batches of the first 1,000 lines committed',
      async () => ((await users()) >= 900 ? true : undefined),
      30_000,
    );
    assert.ok((await users()) <= 1000, 'nothing beyond the lines sent so far');
    await open.write(usersLines(1000, 3000));
    await open.write(
      [
        JSON.stringify({ group: { name: 'everyone', members: Array.from({ length: 150 }, (_, i) => `u${i}`) } }),
        JSON.stringify({ group: { name: 'empty', attributes: { floor: 2 } } }),
      ].join('\n'),
    );
    open.end();
    const { status, body } = await open.answer;
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body, {
      users: { created: 3000, updated: 0, unchanged: 0 },
      groups: { created: 2, updated: 0, unchanged: 0 },
      members: { added: 150, removed: 0 },
      lines: 3002,
      // 30 batches of 100 users; the group of 150 members alone (more rows than a batch), then the other group.
      batches: 32,
    } satisfies StreamImportCounts);
    assert.equal(await users(), 3000);
    assert.equal(await count('SELECT count(DISTINCT xmin::text) AS n FROM users'), 30, 'one transaction per batch');
    assert.equal(await count('SELECT count(*) AS n FROM group_members'), 150);
    assert.equal(await count(`SELECT count(*) AS n FROM outbox WHERE object_type = 'user'`), 3000);
  });

  test('sending the same lines again changes nothing, and a changed group gets exactly its listed members', async () => {
    const lines = usersLines(0, 5) + JSON.stringify({ group: { name: 'team', members: ['u0', 'u1', 'u2'] } }) + '\n';
    assert.equal((await sendImport(server, admin, lines)).status, 200);
    const again = await sendImport(server, admin, lines);
    assert.deepEqual(again.body, {
      users: { created: 0, updated: 0, unchanged: 5 },
      groups: { created: 0, updated: 0, unchanged: 1 },
      members: { added: 0, removed: 0 },
      lines: 6,
      batches: 2,
    });
    const changed = await sendImport(
      server,
      admin,
      `${JSON.stringify({ group: { name: 'team', members: ['u3', 'u0'] } })}\r\n`,
    );
    assert.deepEqual((changed.body as StreamImportCounts).members, { added: 1, removed: 2 });
    assert.deepEqual(await members(), ['u0', 'u3']);
  });

  test('a group member named in another letter case than its username is that user, and sending it again changes nothing', async () => {
    const lines = usersLines(0, 3) + JSON.stringify({ group: { name: 'team', members: ['U0', 'u1'] } }) + '\n';
    const first = await sendImport(server, admin, lines);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual((first.body as StreamImportCounts).members, { added: 2, removed: 0 });
    const again = await sendImport(server, admin, lines);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.deepEqual((again.body as StreamImportCounts).members, { added: 0, removed: 0 });
    assert.deepEqual(await members(), ['u0', 'u1']);
    const ghost = await sendImport(server, admin, JSON.stringify({ group: { name: 'team', members: ['U9'] } }));
    assert.equal(ghost.status, 400);
    assert.deepEqual((ghost.body as ErrorBody).error.issues, [{ path: 'group.members.0', message: 'no user "U9"' }]);
  });

  test('a first line that is malformed says that nothing was imported', async () => {
    const { status, body } = await sendImport(server, admin, '{"user": \n' + usersLines(0, 3));
    assert.equal(status, 400);
    assert.match((body as ErrorBody).error.message, /^line 1: is not valid JSON.*; nothing was imported$/);
    assert.equal(await users(), 0);
  });

  test('a malformed line is a 400 naming it; every line before it is written and nothing from it on', async () => {
    // Line 251 of 400 is not valid JSON; with batches of 100 the lines 201-250 were still waiting for their batch.
    const lines = usersLines(0, 250) + '{"user": {"username": "broken"\n' + usersLines(250, 399);
    const { status, body } = await sendImport(server, admin, lines);
    assert.equal(status, 400);
    const { error } = body as ErrorBody;
    assert.equal(error.code, 'ERR_VALIDATION');
    assert.match(error.message, /^line 251: is not valid JSON/);
    assert.match(error.message, /the 250 lines before it were imported \(3 batches\), nothing from it on/);
    assert.deepEqual(error.issues, [{ path: '', message: error.issues![0]!.message }]);
    assert.equal(error.details?.['line'], 251);
    assert.deepEqual(error.details?.['committed'], usersWritten(250, 3));
    assert.equal(await users(), 250);
    assert.equal(await count(`SELECT count(*) AS n FROM users WHERE username = 'u250'`), 0);
  });

  test('a line that breaks a field rule is a 400 naming the line and the field', async () => {
    const lines = `${userLine(0)}\n\n${JSON.stringify({ user: { username: 'bad', email: 'not-an-email', shoe: 9 } })}\n`;
    const { status, body } = await sendImport(server, admin, lines);
    assert.equal(status, 400);
    const { error } = body as ErrorBody;
    assert.match(error.message, /^line 3: /, 'blank lines count, so the number is the one an editor shows');
    assert.deepEqual(error.issues?.map((issue) => issue.path).sort(), ['user.email', 'user.shoe']);
    assert.equal(await users(), 1);
  });

  test('a line with text PostgreSQL cannot store is a 400 naming the line and the field; the lines before it are kept', async () => {
    // Line 151 (U+0000 in a username) is in the batch of lines 101-200: lines 1-150 are written, as for any bad line.
    const nul = `${JSON.stringify({ user: { username: 'nul\u0000' } })}\n`;
    const { status, error, body } = await importAt151(nul, 300);
    assert.equal(status, 400, JSON.stringify(body));
    assert.equal(error.code, 'ERR_VALIDATION');
    assert.equal(error.details?.['line'], 151);
    assert.deepEqual(
      error.issues?.map((issue) => issue.path),
      ['user.username'],
    );
    assert.equal((error.details?.['committed'] as StreamImportCounts).lines, 150);
    assert.equal(await users(), 150);

    // In a group's attributes (a key) and in a lone surrogate of a member's name: the same, on the first of them.
    const groups = [
      userLine(0),
      JSON.stringify({ group: { name: 'keyed', attributes: { 'floor\u0000': 1 } } }),
      JSON.stringify({ group: { name: 'half', members: ['u0\ud800'] } }),
    ].join('\n');
    const second = await sendImport(server, admin, groups);
    assert.equal(second.status, 400, JSON.stringify(second.body));
    assert.equal((second.body as ErrorBody).error.details?.['line'], 2);
    assert.deepEqual(
      (second.body as ErrorBody).error.issues?.map((issue) => issue.path),
      ['group.attributes'],
    );
    assert.equal((await database.db.query('SELECT 1 FROM groups')).rowCount, 0);
  });

  test('a line that is neither a user nor a group, or longer than the limit, is a 400 naming it', async () => {
    const neither = await sendImport(server, admin, `${JSON.stringify({ users: [] })}\n`);
    assert.equal(neither.status, 400);
    assert.deepEqual((neither.body as ErrorBody).error.issues, [
      { path: '', message: 'must be an object with one key, "user" or "group"' },
    ]);
    const long = JSON.stringify({ user: { username: 'long', displayName: 'x'.repeat(MAX_LINE_BYTES) } });
    const tooLong = await sendImport(server, admin, `${userLine(1)}\n${long}\n${userLine(2)}\n`);
    assert.equal(tooLong.status, 400);
    assert.match(
      (tooLong.body as ErrorBody).error.message,
      new RegExp(`^line 2: is longer than ${MAX_LINE_BYTES} bytes`),
    );
    assert.deepEqual(
      (await database.db.query<{ username: string }>('SELECT username FROM users')).rows.map((r) => r.username),
      ['u1'],
    );
  });

  test('a group naming a user that does not exist stops the import at that line; groups before it are written', async () => {
    const lines = [
      ...Array.from({ length: 3 }, (_, i) => userLine(i)),
      JSON.stringify({ group: { name: 'first', members: ['u0'] } }),
      JSON.stringify({ group: { name: 'second', members: ['u1', 'ghost', 'u2', 'nobody'] } }),
      JSON.stringify({ group: { name: 'third' } }),
    ].join('\n');
    const { status, body } = await sendImport(server, admin, lines);
    assert.equal(status, 400);
    const { error } = body as ErrorBody;
    assert.equal(error.details?.['line'], 5);
    assert.deepEqual(error.issues, [
      { path: 'group.members.1', message: 'no user "ghost"' },
      { path: 'group.members.3', message: 'no user "nobody"' },
    ]);
    assert.equal((error.details?.['committed'] as StreamImportCounts).lines, 4);
    const { rows } = await database.db.query<{ name: string }>('SELECT name FROM groups ORDER BY name');
    assert.deepEqual(
      rows.map((row) => row.name),
      ['first'],
    );
  });

  test('a user line whose username the directory has in another letter case stops the import there with a 409 naming the line', async () => {
    // Line 151 recases u120 of line 121, which is in the batch of lines 101-150: those are written, then line 151 is refused.
    const recased = `${JSON.stringify({ user: { username: 'U120' } })}\n`;
    const { status, error, body } = await importAt151(recased, 200);
    assert.equal(status, 409, JSON.stringify(body));
    assert.equal(error.code, 'ERR_CONFLICT');
    assert.match(error.message, /^line 151: user\.username: "U120" is the user "u120" in another letter case/);
    assert.match(error.message, /the 150 lines before it were imported \(2 batches\), nothing from it on/);
    assert.equal(error.details?.['line'], 151);
    assert.equal(error.details?.['field'], 'username');
    assert.deepEqual(error.details?.['committed'], usersWritten(150, 2));
    assert.equal(await users(), 150);
    assert.equal(await count(`SELECT count(*) AS n FROM users WHERE username IN ('U120', 'u150')`), 0);
  });

  test('a group line whose name the directory or an earlier line has in another letter case stops the import there with a 409', async () => {
    const lines = [
      JSON.stringify({ group: { name: 'Team' } }),
      JSON.stringify({ group: { name: 'crew' } }),
      JSON.stringify({ group: { name: 'TEAM', attributes: { floor: 2 } } }),
      JSON.stringify({ group: { name: 'after' } }),
    ].join('\n');
    const { status, body } = await sendImport(server, admin, lines);
    assert.equal(status, 409, JSON.stringify(body));
    const { error } = body as ErrorBody;
    assert.equal(error.code, 'ERR_CONFLICT');
    assert.equal(error.details?.['line'], 3);
    assert.equal(error.details?.['field'], 'name');
    assert.equal((error.details?.['committed'] as StreamImportCounts).lines, 2);
    const { rows } = await database.db.query<{ name: string }>('SELECT name FROM groups ORDER BY name');
    assert.deepEqual(
      rows.map((row) => row.name),
      ['Team', 'crew'],
    );
  });

  test('a line whose name PostgreSQL folds like an earlier line of its batch (İ, which JavaScript folds otherwise) stops the import there with a 409', async () => {
    // PostgreSQL's lower() makes İrem irem; JavaScript's toLowerCase() makes it i̇rem (i, U+0307). Σ is the other
    // way round: ΟΔΟΣ and οδος are two names to PostgreSQL (οδοσ, οδος), one to JavaScript (οδος).
    const lines = ['ΟΔΟΣ', 'οδος', 'irem', 'İrem', 'after']
      .map((username) => JSON.stringify({ user: { username } }))
      .join('\n');
    const { status, body } = await sendImport(server, admin, lines);
    assert.equal(status, 409, JSON.stringify(body));
    const { error } = body as ErrorBody;
    assert.equal(error.code, 'ERR_CONFLICT');
    assert.match(error.message, /^line 4: user\.username: "İrem" is the user "irem" in another letter case/);
    assert.equal(error.details?.['line'], 4);
    assert.deepEqual(error.details?.['committed'], usersWritten(3, 1));
    const { rows } = await database.db.query<{ username: string }>('SELECT username FROM users ORDER BY username');
    assert.deepEqual(
      rows.map((row) => row.username),
      ['irem', 'ΟΔΟΣ', 'οδος'],
    );
  });

  test('the import needs an admin token and an NDJSON body, and writes nothing otherwise', async () => {
    const lines = usersLines(0, 3);
    const none = await sendImport(server, null, lines);
    assert.equal(none.status, 401);
    assert.equal((none.body as ErrorBody).error.code, 'ERR_UNAUTHENTICATED');
    const weak = await sendImport(server, viewer, lines);
    assert.equal(weak.status, 403);
    assert.equal((weak.body as ErrorBody).error.code, 'ERR_FORBIDDEN');
    const json = await sendImport(server, admin, lines, 'application/json');
    assert.equal(json.status, 415);
    assert.equal((json.body as ErrorBody).error.code, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    const form = await sendImport(server, admin, lines, 'text/plain');
    assert.equal(form.status, 415);
    assert.equal(await users(), 0);
  });
});
