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
