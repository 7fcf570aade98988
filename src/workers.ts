import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { ConfigProblem } from './config-problem.ts';
import type { HubConfig } from './config.ts';
import { eventLogStore, normalizeEventLogConfig } from './events/retention.ts';

/**
 * `junction serve --workers N`: N hub processes (node:cluster) behind one port. The primary
 * process forks them, says "serving" once all of them listen, replaces a worker that dies, and
 * on SIGTERM/SIGINT has each of them drain; each worker is an ordinary hub. They share only what
 * the config puts in a shared store, so the pub/sub and the event log must be Redis or
 * PostgreSQL (sharedStoreProblems). /metrics answers the sum over all workers.
 */

/** Messages between the primary and its workers (IPC), besides prom-client's own. */
type WorkerMessage = { junction: 'listening'; url: string } | { junction: 'metrics'; id: number };
type PrimaryMessage = { junction: 'metrics'; id: number; text?: string; error?: string };

/** Whether this process is a worker a `--workers` primary forked. */
export const isWorker = (): boolean => cluster.isWorker;

/** What a config shares with nothing else, so that N workers would each have their own. */
export function sharedStoreProblems(config: HubConfig, workers: number): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ file: config.file, path, message: `--workers ${workers}: ${message}` });
  if (config.pubsub === 'memory') {
    problem('pubsub', 'the pub/sub must be shared by the workers: a redis:// or postgres:// URL, not "memory" (a subscription on one worker would miss what another publishes)');
  }
  const log = normalizeEventLogConfig(config.eventLog).url;
  if (eventLogStore(log) === 'sqlite') {
    problem('eventLog', 'the event log must be shared by the workers: a redis:// or postgres:// URL, not a sqlite: file (its subscribers hear only their own process)');
  }
  for (const [name, connector] of Object.entries(config.connectors)) {
    // One MQTT client id is one connection: N workers consuming with it would take the session
    // from each other, over and over.
    if (connector.type === 'mqtt' && ((connector as { consume?: unknown[] }).consume ?? []).length > 0) {
      problem(`connectors.${name}.consume`, 'an MQTT persistent session (one clientId) has one connection at a time; consume in a hub without --workers');
    }
  }
  return problems;
}

// ---- worker side ---------------------------------------------------------------------------

/**
 * In a worker: hands `registry` to prom-client's cluster aggregation, and returns what /metrics
 * answers there (the primary's sum over every worker's registry).
 */
export function workerMetrics(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // installs the worker's answer to the primary's requests
  let next = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  process.on('message', (message: PrimaryMessage) => {
    if (message?.junction !== 'metrics') return;
    const request = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.error !== undefined) request?.reject(new Error(message.error));
    else request?.resolve(message.text ?? '');
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject });
      process.send!({ junction: 'metrics', id } satisfies WorkerMessage);
    });
}

/** In a worker: tells the primary this worker listens. */
export function workerListening(url: string): void {
  process.send!({ junction: 'listening', url } satisfies WorkerMessage);
}

// ---- primary side --------------------------------------------------------------------------

export interface SuperviseOptions {
  count: number;
  logger: Logger;
  /** Logs the one "serving" line, once every worker listens. */
  serving: (url: string) => void;
}

/**
 * The primary: forks `count` workers and supervises them until SIGTERM/SIGINT, then has each
 * drain (SIGTERM) and resolves with 0 when all exited 0, else 1. A worker that dies after it
 * listened is replaced; one that dies before it ever listened (a start-up that fails as a single
 * hub's would, e.g. a port in use) stops them all with 1, instead of a restart loop.
 */
export function superviseWorkers({ count, logger, serving }: SuperviseOptions): Promise<number> {
  const aggregator = new AggregatorRegistry();
  const live = new Set<Worker>();
  const listened = new Set<Worker>();
  let stopping = false;
  let failed = false;
  let announced = false;

  return new Promise((resolve) => {
    const finish = () => {
      if (live.size === 0) resolve(failed ? 1 : 0);
    };
    const stopAll = (signal: NodeJS.Signals | 'failure') => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, workers: live.size }, 'draining: each worker finishes its requests');
      // SIGTERM, whatever the primary got: a worker that already has the terminal's SIGINT
      // would take a second SIGINT as "exit now".
      for (const worker of live) worker.process.kill('SIGTERM');
      finish();
    };
    const fork = () => {
      const worker = cluster.fork();
      live.add(worker);
      worker.on('message', (message: WorkerMessage) => {
        if (message?.junction === 'listening') {
          listened.add(worker);
          logger.info({ worker: worker.id, pid: worker.process.pid }, 'worker listening');
          if (!announced && listened.size >= count) {
            announced = true;
            serving(message.url);
          }
        } else if (message?.junction === 'metrics') {
          aggregator.clusterMetrics().then(
            (text) => worker.isConnected() && worker.send({ junction: 'metrics', id: message.id, text } satisfies PrimaryMessage),
            (error: Error) => worker.isConnected() && worker.send({ junction: 'metrics', id: message.id, error: error.message } satisfies PrimaryMessage),
          );
        }
      });
      worker.on('exit', (code, signal) => {
        live.delete(worker);
        const ok = code === 0 && signal === null;
        if (stopping) {
          if (!ok) failed = true;
          logger.info({ worker: worker.id, pid: worker.process.pid, code, signal }, 'worker stopped');
          return finish();
        }
        if (!listened.has(worker)) {
          logger.error({ worker: worker.id, pid: worker.process.pid, code, signal }, 'worker exited before it listened: stopping');
          failed = true;
          return stopAll('failure');
        }
        listened.delete(worker);
        logger.error({ worker: worker.id, pid: worker.process.pid, code, signal }, 'worker exited: starting another');
        fork();
      });
    };
    process.on('SIGTERM', () => stopAll('SIGTERM'));
    process.on('SIGINT', () => stopAll('SIGINT'));
    for (let n = 0; n < count; n++) fork();
  });
}
