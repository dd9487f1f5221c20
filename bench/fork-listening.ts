import { fork, type ChildProcess } from 'node:child_process';

/** Forks a bench helper script and resolves with the port it prints as `LISTENING <port>` once ready. */
export async function forkListening(file: URL, args: string[] = []): Promise<{ port: number; child: ChildProcess }> {
  const child = fork(file, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], execArgv: ['--no-node-snapshot'] });
  let buffer = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /LISTENING (\d+)/.exec(buffer);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`${file.pathname} exited with ${code}`)));
  });
  return { port, child };
}

/**
 * Calls a helper process over IPC: sends `{ id, call }` and resolves with the `result` of the answer that carries the
 * same id (the helper answers `{ id, result }`), so calls in flight at once never take each other's answers.
 */
export function ipcCaller<Call extends string>(child: ChildProcess): <R>(call: Call) => Promise<R> {
  let next = 0;
  return <R>(call: Call) =>
    new Promise<R>((resolve) => {
      const id = (next += 1);
      const listener = (message: { id: number; result: R }) => {
        if (message.id !== id) return;
        child.off('message', listener);
        resolve(message.result);
      };
      child.on('message', listener);
      child.send({ id, call });
    });
}
