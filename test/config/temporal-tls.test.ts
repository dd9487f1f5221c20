import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer, type Server } from 'node:tls';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { loadEnv, temporalConnectionOptions } from '../../config/index.ts';
import { generateSecretKey } from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { testTemporalAddress } from '../support/temporal.ts';

const SERVER_NAME = 'temporal.scimflow.test';

/** A throw-away CA, a server certificate for SERVER_NAME and a client certificate, made with openssl. */
async function makeCertificates(dir: string): Promise<void> {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=scimflow test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  for (const [name, usage, san] of [
    ['server', 'serverAuth', `DNS:${SERVER_NAME}`],
    ['client', 'clientAuth', 'DNS:scimflow-worker'],
  ] as const) {
    await writeFile(
      join(dir, `${name}.ext`),
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${usage}\nsubjectAltName=${san}\n`,
    );
    openssl('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    );
  }
}

/**
 * A TLS front for the plaintext dev server, as a TLS-terminating load balancer would be: it demands a client
 * certificate signed by the CA (mutual TLS), speaks HTTP/2 (gRPC) and passes the bytes through.
 */
async function startMutualTlsFront(dir: string, upstream: string): Promise<{ server: Server; address: string }> {
  const [host, port] = [
    upstream.slice(0, upstream.lastIndexOf(':')),
    Number(upstream.slice(upstream.lastIndexOf(':') + 1)),
  ];
  const server = createServer(
    {
      key: await readFile(join(dir, 'server.key')),
      cert: await readFile(join(dir, 'server.pem')),
      ca: await readFile(join(dir, 'ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      const backend = connect(port, host);
      socket.pipe(backend).pipe(socket);
      socket.on('error', () => backend.destroy());
      backend.on('error', () => socket.destroy());
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('Temporal over mutual TLS', () => {
  let dir: string;
  let front: { server: Server; address: string };
  let env: ReturnType<typeof loadEnv>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'scimflow-tls-'));
    await makeCertificates(dir);
    front = await startMutualTlsFront(dir, await testTemporalAddress());
    env = loadEnv({
      TEMPORAL_ADDRESS: front.address,
      TEMPORAL_TLS_CA_PATH: join(dir, 'ca.pem'),
      TEMPORAL_TLS_CERT_PATH: join(dir, 'client.pem'),
      TEMPORAL_TLS_KEY_PATH: join(dir, 'client.key'),
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
    });
  });
  after(async () => {
    front.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the client connection the API uses reaches Temporal through a front that demands a client certificate', async () => {
    const connection = await Connection.connect(temporalConnectionOptions(env, front.address));
    try {
      const info = await connection.workflowService.getSystemInfo({});
      assert.ok(info.serverVersion, 'the server answered without a version');
    } finally {
      await connection.close();
    }
  });

  test('the native connection the worker uses connects with the same settings', async () => {
    const connection = await NativeConnection.connect(temporalConnectionOptions(env, front.address));
    try {
      const info = await connection.workflowService.getSystemInfo({});
      assert.ok(info.serverVersion, 'the server answered without a version');
    } finally {
      await connection.close();
    }
  });

  test('without the client certificate the front refuses the connection', async () => {
    const withoutClientCert = loadEnv({
      TEMPORAL_ADDRESS: front.address,
      TEMPORAL_TLS_CA_PATH: join(dir, 'ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
    });
    await assert.rejects(async () => {
      const connection = await NativeConnection.connect(temporalConnectionOptions(withoutClientCert, front.address));
      await connection.close();
    });
  });

  test('scimflow worker, configured by environment variables only, runs its worker through the mutual TLS front', async (t) => {
    const testDb = await createTestDatabase();
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../cli/bin.mjs', import.meta.url)), 'worker'], {
      env: {
        ...process.env,
        DATABASE_URL: testDb.url,
        SCIMFLOW_SECRET_KEY: generateSecretKey(),
        SCIMFLOW_TASK_QUEUE: `tls-${randomBytes(4).toString('hex')}`,
        LOG_LEVEL: 'info',
        TEMPORAL_ADDRESS: front.address,
        TEMPORAL_TLS_CA_PATH: join(dir, 'ca.pem'),
        TEMPORAL_TLS_CERT_PATH: join(dir, 'client.pem'),
        TEMPORAL_TLS_KEY_PATH: join(dir, 'client.key'),
        TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => testDb.drop());
    let output = '';
    const running = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (/scimflow worker running/.test(output)) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('close', () => reject(new Error(`the worker ended before it ran:\n${output}`)));
    });
    await running;
    child.kill('SIGTERM');
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(code, 0, output);
    assert.match(output, /"security":"mutual TLS, own CA"/);
  });
});
