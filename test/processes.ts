// Real `junction serve` child processes for tests: started in a project folder, stopped with
// SIGTERM or killed with SIGKILL, all killed and their folders removed by `cleanup()`.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { project, ROOT, SPAWN_TIMEOUT_MS } from './helpers.ts';

export interface Served {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  origin: string;
  url: string;
  wsUrl: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export class HubProcesses {
  readonly #children = new Set<ChildProcess>();
  readonly #removers: (() => void)[] = [];

  /** A temporary project folder, removed by `cleanup()`. */
  temp(files: Record<string, string>): string {
    const { dir, remove } = project(files);
    this.#removers.push(remove);
    return dir;
  }

  /**
   * `node bin/junction.mjs serve --port 0 [args]` in `cwd`; resolves once its "serving" line
   * names its URL.
   */
  serve(cwd: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<Served> {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/junction.mjs'), 'serve', '--port', '0', ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#children.add(child);
    let output = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    void exited.then(() => this.#children.delete(child));
    return new Promise<Served>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`junction serve did not start in time\n${output}`)), SPAWN_TIMEOUT_MS);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        for (const text of output.split('\n')) {
          if (!text.includes('serving')) continue;
          let line: { url?: string };
          try {
            line = JSON.parse(text) as { url?: string };
          } catch {
            continue;
          }
          if (!line.url) continue;
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          child.stdout!.on('data', (more: Buffer) => (output += more.toString()));
          const port = new URL(line.url).port;
          const origin = `http://127.0.0.1:${port}`;
          resolve({ child, origin, url: `${origin}/graphql`, wsUrl: `ws://127.0.0.1:${port}/graphql`, output: () => output, exited });
          return;
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`junction serve exited (${code ?? signal}) before serving\n${output}`));
      });
    });
  }

  /** SIGTERM, and its exit status. */
  async stop(served: Served): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    served.child.kill('SIGTERM');
    return served.exited;
  }

  /** SIGKILL, and its exit status. */
  async kill(served: Served): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    served.child.kill('SIGKILL');
    return served.exited;
  }

  /** Kills every process still running and removes every temporary folder. */
  async cleanup(): Promise<void> {
    await Promise.all(
      [...this.#children].map(async (child) => {
        if (child.exitCode === null && child.signalCode === null) {
          const gone = new Promise((resolve) => child.once('close', resolve));
          child.kill('SIGKILL');
          await gone;
        }
      }),
    );
    this.#children.clear();
    for (const remove of this.#removers.splice(0)) remove();
  }
}
