import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import * as z from 'zod';
import { NODE_FLAGS, nodeEnvironment } from '../../cli/node-flags.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const DependencySchema = z.object({
  condition: z.enum(['service_started', 'service_healthy', 'service_completed_successfully']),
});
const ServiceSchema = z.object({
  image: z.string(),
  build: z.union([z.string(), z.object({ context: z.string(), dockerfile: z.string().optional() })]).optional(),
  command: z.array(z.string()).optional(),
  entrypoint: z.array(z.string()).optional(),
  // The long form only: a bare list would start services without waiting for their condition.
  depends_on: z.record(z.string(), DependencySchema).optional(),
  environment: z.record(z.string(), z.string()).optional(),
  ports: z.array(z.string()).optional(),
  volumes: z.array(z.string()).optional(),
  healthcheck: z.object({ test: z.array(z.string()) }).optional(),
  stop_grace_period: z.string().optional(),
});
const ComposeSchema = z.object({ services: z.record(z.string(), ServiceSchema) });
type Service = z.infer<typeof ServiceSchema>;

const compose = ComposeSchema.parse(parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')));
const services = Object.entries(compose.services);

function service(name: string): Service {
  const found = compose.services[name];
  assert.ok(found, `docker-compose.yml has no service ${name}`);
  return found;
}

function servicesRunning(imageName: string): [string, Service][] {
  return services.filter(([, svc]) => svc.image.split(':')[0] === imageName);
}

function env(svc: Service, name: string): string {
  const value = svc.environment?.[name];
  assert.ok(value !== undefined, `environment variable ${name} is missing`);
  return value;
}

/** The host path mounted at `containerDir`, resolved against the repository root. */
function hostPathMountedAt(svc: Service, containerDir: string): string {
  const mount = svc.volumes?.map((volume) => volume.split(':')).find(([, target]) => target === containerDir);
  assert.ok(mount?.[0], `nothing is mounted at ${containerDir}`);
  return path.join(ROOT, mount[0]);
}

/** The repository file a one-shot admin-tools job runs: its entrypoint script, through the job's bind mount. */
function jobScript(svc: Service): string {
  const script = svc.entrypoint?.find((arg) => arg.endsWith('.sh'));
  assert.ok(script, 'the job runs no script');
  const file = path.join(hostPathMountedAt(svc, path.posix.dirname(script)), path.posix.basename(script));
  assert.ok(existsSync(file), `${file} does not exist`);
  return readFileSync(file, 'utf8');
}

/** Seconds in a compose duration such as `90s`, `1m` or `1m30s`; 0 when unset or unreadable. */
function durationSeconds(duration: string): number {
  const match = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(duration);
  if (!match || duration === '') return 0;
  return Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0);
}

const SCIMFLOW_SERVICES = ['scimflow-worker', 'scimflow-api'];

test('every image is pinned to an explicit version tag', () => {
  for (const [name, svc] of services) {
    const tag = svc.image.split(':')[1] ?? '';
    assert.match(tag, /^\d+\.\d+(\.\d+)?([-.][\w.-]+)?$/, `${name} uses image ${svc.image}`);
  }
});

test('no service uses the deprecated temporalio/auto-setup image', () => {
  assert.deepEqual(servicesRunning('temporalio/auto-setup'), []);
});

test('every dependency names an existing service and waits on a condition that service can report', () => {
  for (const [name, svc] of services) {
    for (const [dependency, { condition }] of Object.entries(svc.depends_on ?? {})) {
      const target = compose.services[dependency];
      assert.ok(target, `${name} depends on unknown service ${dependency}`);
      if (condition === 'service_healthy') assert.ok(target.healthcheck, `${dependency} has no healthcheck`);
    }
  }
});

test('the Temporal schema job runs to completion before the Temporal server starts', () => {
  const [server] = servicesRunning('temporalio/server');
  assert.ok(server, 'no temporalio/server service');
  const schemaJobs = Object.entries(server[1].depends_on ?? {}).filter(
    ([, { condition }]) => condition === 'service_completed_successfully',
  );
  assert.equal(schemaJobs.length, 1);
  const [jobName] = schemaJobs[0] ?? [''];
  const job = service(jobName);
  assert.equal(job.image.split(':')[0], 'temporalio/admin-tools');
  const script = jobScript(job);
  for (const step of ['temporal-sql-tool', ' create', 'setup-schema -v 0.0', 'update-schema -d']) {
    assert.ok(script.includes(step), `the schema script does not run ${step.trim()}`);
  }
  assert.match(script, /temporal_visibility/);
});

test('the Temporal server runs on PostgreSQL with a dynamic config file that exists in the repository', () => {
  const server = service('temporal');
  assert.equal(env(server, 'DB'), 'postgres12');
  const configPath = env(server, 'DYNAMIC_CONFIG_FILE_PATH');
  const hostFile = path.join(
    hostPathMountedAt(server, path.posix.dirname(configPath)),
    path.posix.basename(configPath),
  );
  assert.ok(existsSync(hostFile), `${hostFile} does not exist`);
  const config: unknown = parse(readFileSync(hostFile, 'utf8'));
  assert.equal(typeof config, 'object');
});

test('the namespace job waits for a healthy server and registers ScimProvider as a Keyword search attribute', () => {
  const jobs = servicesRunning('temporalio/admin-tools').filter(([, svc]) => svc.depends_on?.['temporal']);
  const job = jobs[0]?.[1];
  assert.ok(job && jobs.length === 1, 'expected exactly one admin-tools job after the server');
  assert.equal(job.depends_on?.['temporal']?.condition, 'service_healthy');
  assert.match(jobScript(job), /search-attribute create[\s\S]*--name ScimProvider --type Keyword/);
});

test('the worker and the API run the scimflow image with the environment they need, logging JSON lines by default', () => {
  for (const name of SCIMFLOW_SERVICES) {
    const svc = service(name);
    assert.ok(svc.build, `${name} is not built from the Dockerfile`);
    assert.equal(env(svc, 'TEMPORAL_ADDRESS'), 'temporal:7233');
    assert.ok(env(svc, 'TEMPORAL_NAMESPACE'));
    assert.ok(env(svc, 'LOG_LEVEL'));
    // A container's stdout is read by a log collector: JSON lines unless the operator asks otherwise.
    assert.equal(env(svc, 'LOG_FORMAT'), '${LOG_FORMAT:-json}');
    assert.match(env(svc, 'DATABASE_URL'), /^postgres:\/\//);
  }
  assert.deepEqual(service('scimflow-worker').command, ['worker']);
  assert.deepEqual(service('scimflow-api').command, ['api']);
});

test('SCIMFLOW_SECRET_KEY must be provided and has no default', () => {
  for (const name of SCIMFLOW_SERVICES) {
    const value = env(service(name), 'SCIMFLOW_SECRET_KEY');
    assert.match(value, /^\$\{SCIMFLOW_SECRET_KEY:\?[^}]+\}$/, `${name}: ${value}`);
  }
});

test('scimflow keeps its data in its own PostgreSQL database, apart from Temporal', () => {
  const temporalDbHost = env(service('temporal'), 'POSTGRES_SEEDS');
  for (const name of SCIMFLOW_SERVICES) {
    const url = new URL(env(service(name), 'DATABASE_URL').replace(/\$\{[^}]+\}/g, 'x'));
    assert.notEqual(url.hostname, temporalDbHost);
    assert.equal(url.pathname, '/scimflow');
    assert.equal(service(url.hostname).image.split(':')[0], 'postgres');
  }
});

test('the worker and the API start only after migrations and the namespace job succeeded', () => {
  for (const name of SCIMFLOW_SERVICES) {
    const dependsOn = service(name).depends_on ?? {};
    assert.equal(dependsOn['temporal-namespace']?.condition, 'service_completed_successfully');
    assert.equal(dependsOn['scimflow-migrate']?.condition, 'service_completed_successfully');
  }
  assert.deepEqual(service('scimflow-migrate').command, ['migrate']);
});

test('the worker gets a grace period to drain in-flight activities on shutdown', () => {
  const grace = service('scimflow-worker').stop_grace_period ?? '';
  assert.ok(durationSeconds(grace) >= 30, `stop_grace_period is ${grace || 'unset'}`);
});

test('the API and the Web UI publish their ports on the loopback interface only', () => {
  const published = (name: string): string[] => service(name).ports ?? [];
  assert.ok(published('scimflow-api').some((port) => /^127\.0\.0\.1:.+:7400$/.test(port)));
  assert.ok(published('temporal-ui').some((port) => /^127\.0\.0\.1:.+:8080$/.test(port)));
  for (const [name, svc] of services) {
    for (const port of svc.ports ?? [])
      assert.match(port, /^127\.0\.0\.1:/, `${name} publishes ${port} on every interface`);
  }
});

test('no service publishes the Temporal frontend: only services on the compose network reach it', () => {
  for (const [name, svc] of services) {
    for (const port of svc.ports ?? []) assert.doesNotMatch(port, /:7233$/, `${name} publishes ${port}`);
  }
  assert.equal(service('temporal').ports, undefined);
});

test('the Temporal Web UI is read-only unless the operator turns write actions on', () => {
  const value = env(service('temporal-ui'), 'TEMPORAL_DISABLE_WRITE_ACTIONS');
  // Either the literal or a variable whose default is true: what `docker compose up` gets with nothing set.
  const resolved = /^\$\{[A-Z_]+:-([^}]*)\}$/.exec(value)?.[1] ?? value;
  assert.equal(resolved, 'true');
});

test("the Dockerfile builds on a pinned Node 24 and starts scimflow with scimflow's Node flags and environment as a non-root user", () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const instructions = dockerfile
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const bases = instructions.filter((line) => line.startsWith('FROM '));
  assert.ok(bases.length > 0);
  for (const base of bases) assert.match(base, /^FROM node:24\.\d+\.\d+(-[\w.-]+)?( AS \w+)?$/);
  const startup = instructions.filter((line) => /^(ENTRYPOINT|CMD) /.test(line)).join(' ');
  assert.match(startup, /"--no-node-snapshot"/);
  // The ENTRYPOINT cannot import cli/node-flags.mjs: it must repeat every flag the launcher and the bin pass.
  for (const flag of NODE_FLAGS) assert.ok(startup.includes(`"${flag}"`), `the image starts without ${flag}`);
  // Nor the environment the launcher and the bin give scimflow: the image sets it.
  for (const [name, value] of Object.entries(nodeEnvironment({}))) {
    assert.ok(instructions.includes(`ENV ${name}=${value}`), `the image starts without ${name}=${value}`);
  }
  assert.match(startup, /cli\/main\.ts/);
  const users = instructions.filter((line) => line.startsWith('USER '));
  assert.ok(users.length > 0 && users.at(-1) !== 'USER root', 'the image runs as root');
});

test("scimflow's processes get two malloc arenas unless the environment chooses otherwise", () => {
  assert.equal(nodeEnvironment({ PATH: '/bin' })['MALLOC_ARENA_MAX'], '2');
  assert.equal(nodeEnvironment({ PATH: '/bin' })['PATH'], '/bin');
  assert.equal(nodeEnvironment({ MALLOC_ARENA_MAX: '8' })['MALLOC_ARENA_MAX'], '8');
});
