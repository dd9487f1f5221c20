#!/usr/bin/env node
// The package's `scimflow` bin. Plain JavaScript so it runs before anything is compiled: it re-runs Node with
// scimflow's flags (cli/node-flags.mjs: --no-node-snapshot, which isolated-vm needs, and two that bound a worker's
// memory, and the environment that bounds malloc's) on cli/main.ts, unless this process already has --no-node-snapshot.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS, NO_SNAPSHOT as FLAG, nodeEnvironment } from './node-flags.mjs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `error: scimflow needs Node.js 24 or later (this is ${process.version}); run it with node_modules/.bin/node or \`npm run scimflow\``,
  );
  process.exit(1);
}

const hasFlag = process.execArgv.includes(FLAG) || (process.env.NODE_OPTIONS ?? '').split(/\s+/).includes(FLAG);
if (hasFlag) {
  await import('./main.ts');
} else {
  const main = fileURLToPath(new URL('./main.ts', import.meta.url));
  const child = spawn(process.execPath, [...NODE_FLAGS, main, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: nodeEnvironment(process.env),
  });
  // A terminal's Ctrl-C already reaches the child (same process group); forwarding it too would deliver it twice
  // and turn a graceful stop into an abrupt one. Signals sent to this process alone are passed on.
  const forward = (signal) => {
    if (signal === 'SIGINT' && process.stdin.isTTY) return;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, forward);
  child.on('error', (error) => {
    console.error(`error: cannot start ${process.execPath}: ${error.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const name of signals) process.off(name, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
