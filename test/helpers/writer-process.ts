// A real writer process for the sweep tests (agent relay directories, --stage leftovers):
// `node -e CODE`, optionally as pid 1 of a pid namespace of its own (as a node agent runs
// as root); resolves with the first line it prints, once it has exited unless `stay`
// (then it runs until the test ends).
import type { TestContext } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export async function writerProcess(t: TestContext, code: string, stay: boolean, pidns = false): Promise<{ child: ChildProcess; line: string }> {
  const argv = [process.execPath, '--input-type=module', '-e', `${code}${stay ? ' setInterval(() => {}, 1 << 30);' : ''}`];
  const [command, ...args] = pidns ? ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child', '--', ...argv] : argv;
  const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  child.stdout!.setEncoding('utf8');
  let out = '';
  for await (const chunk of child.stdout!) {
    out += chunk as string;
    if (out.endsWith('\n')) break;
  }
  if (!stay) await once(child, 'exit');
  return { child, line: out.trim() };
}
