// A connector type of the demo's own, `files`: a local folder as a data source — its listing,
// and its text, JSON and CSV files as typed GraphQL values. It is written exactly as a project
// using Junction would write one: against the package's public API (`from 'junction'`) only.
//
//   connectorTypes: { files: ./demo/connectors/files.ts }
//   connectors:
//     docs: { type: files, root: demo/files }
//
// Every file system access goes through the connector's pipeline (`this.call`), so the cache
// (`cache.ttlMs`, `@cache`), the in-flight dedupe, the breaker, the timeout and the metrics apply
// to it as to any built-in connector.
import { constants } from 'node:fs';
import { access, type FileHandle, open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { getNullableType, isLeafType, isListType } from 'graphql';
import {
  BaseConnector,
  type ConnectorDeps,
  ConnectorError,
  connectorConfig,
  defineConnectorType,
  type DirectiveUse,
  ErrorCode,
  type FieldBinding,
  type FieldDirective,
  type FieldResolver,
  markStale,
  type Outcome,
  positiveInt,
  str,
  Template,
  UpstreamError,
  type z,
} from 'junction';

export const filesConfigSchema = connectorConfig({
  /** Required. The folder served, relative to the config file's folder. Paths never leave it. */
  root: str('a folder path'),
  /** Default 1 MiB. A larger file fails with UPSTREAM_ERROR instead of being read. */
  maxFileBytes: positiveInt().default(1024 * 1024),
});
export type FilesConfig = z.output<typeof filesConfigSchema>;

/** One entry of a folder listing. */
export interface FileEntry {
  name: string;
  /** Relative to the connector's root, `/`-separated: what `text()`, `json()`, `csv()` take. */
  path: string;
  /** Bytes; null for a folder. */
  size: number | null;
  /** ISO 8601. */
  modifiedAt: string;
  kind: 'file' | 'folder';
}

/** A CSV row keyed by the header row: unquoted numbers are numbers, unquoted empty cells null. */
export type CsvRow = Record<string, string | number | null>;

/** What `@files` makes of a file (its `format` argument). */
export type FileFormat = 'LIST' | 'TEXT' | 'JSON' | 'CSV';

/** The value each format reads. */
export interface FileContents {
  LIST: FileEntry[];
  TEXT: string;
  JSON: unknown;
  CSV: CsvRow[];
}

export interface ReadOptions {
  /** Cache TTL for this read (a field's `@cache`); else the connector's `cache.ttlMs`. */
  ttlMs?: number | undefined;
  /** Serve the last cached value while the breaker is open. */
  staleIfOpen?: boolean | undefined;
}

/**
 * A path the caller gave that the connector refuses (absolute, `..`, a link out of the root):
 * BAD_USER_INPUT, and not the breaker's concern.
 */
export class FilePathError extends ConnectorError {
  readonly code = ErrorCode.BAD_USER_INPUT;
  override readonly countsAsFailure = false;
}

// O_NOFOLLOW: a file swapped for a symbolic link after its path was checked is not followed.
// O_NONBLOCK: opening a FIFO does not wait for a writer (regular files ignore it).
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
const PERMANENT = { transient: false, countsAsFailure: false } as const;

/** A local folder: listed, and its files read as text, JSON or CSV rows, confined to `root`. */
export class FilesConnector extends BaseConnector<FilesConfig> {
  /** The root as configured, made absolute (against the config file's folder). */
  readonly root: string;

  constructor(name: string, config: FilesConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    this.root = path.resolve(deps.baseDir, config.root);
  }

  /** The entries of a folder under the root (default: the root), sorted by name. */
  async list(folder = ''): Promise<FileEntry[]> {
    return (await this.read(folder, 'LIST')).value;
  }

  /** A UTF-8 text file. */
  async text(file: string): Promise<string> {
    return (await this.read(file, 'TEXT')).value;
  }

  /** A JSON file, parsed. `T` is what you expect it to hold; it is not checked. */
  async json<T = unknown>(file: string): Promise<T> {
    return (await this.read(file, 'JSON')).value as T;
  }

  /** A CSV file's rows, as objects keyed by its header row. */
  async csv(file: string): Promise<CsvRow[]> {
    return (await this.read(file, 'CSV')).value;
  }

  /**
   * Reads `file` (relative to the root) as `format`, through the pipeline; what `@files` calls.
   * The value is parsed inside the call, so the cache keeps it parsed; treat it as read-only.
   */
  async read<F extends FileFormat>(file: string, format: F, options: ReadOptions = {}): Promise<Outcome<FileContents[F]>> {
    const relative = this.relative(file);
    return this.call({
      key: `${format} ${relative}`,
      safe: true,
      retryable: false,
      ttlMs: options.ttlMs,
      staleIfOpen: options.staleIfOpen,
      attempt: async (signal) => {
        const real = await this.#locate(relative);
        signal.throwIfAborted();
        if (format === 'LIST') return (await this.#list(real, relative, signal)) as FileContents[F];
        const text = decode(this.name, relative, await this.#readFile(real, relative, signal));
        if (format === 'JSON') return parseJson(this.name, relative, text) as FileContents[F];
        if (format === 'CSV') return parseCsv(this.name, relative, text) as FileContents[F];
        return text as FileContents[F];
      },
    });
  }

  /**
   * A path as given (`/` or `\` separated, relative to the root) made canonical, or a
   * FilePathError when it is absolute or climbs out with `..`. Symbolic links are checked when
   * the path is resolved, inside the call.
   */
  relative(file: string): string {
    const checked = canonicalPath(file);
    if (typeof checked !== 'string') throw new FilePathError(this.name, checked.problem);
    return checked;
  }

  /** The root's real path (symbolic links resolved), or an UpstreamError: the folder is gone. */
  async #realRoot(): Promise<string> {
    try {
      return await realpath(this.root);
    } catch (error) {
      throw new UpstreamError(this.name, `the root folder ${JSON.stringify(this.config.root)} cannot be read (${codeOf(error)})`, { transient: false });
    }
  }

  /** The real path of `relative` under the root; never outside it. */
  async #locate(relative: string): Promise<string> {
    const root = await this.#realRoot();
    let real: string;
    try {
      real = await realpath(path.join(root, relative));
    } catch (error) {
      throw this.#fsError(error, relative);
    }
    if (!inside(root, real)) throw new FilePathError(this.name, `path ${JSON.stringify(relative)} leads outside the connector's root (a symbolic link)`);
    return real;
  }

  async #list(real: string, relative: string, signal: AbortSignal): Promise<FileEntry[]> {
    const root = await this.#realRoot();
    let dirents;
    try {
      if (!(await stat(real)).isDirectory()) {
        throw new UpstreamError(this.name, `${JSON.stringify(relative)} is a file, not a folder (read it with format TEXT, JSON or CSV)`, { status: 400, ...PERMANENT });
      }
      dirents = await readdir(real, { withFileTypes: true });
    } catch (error) {
      if (error instanceof ConnectorError) throw error;
      throw this.#fsError(error, relative);
    }
    const entries = await Promise.all(
      dirents.map(async (dirent): Promise<FileEntry | undefined> => {
        let target = path.join(real, dirent.name);
        try {
          // A link is listed as what it points to, when that is under the root; else not at all.
          if (dirent.isSymbolicLink()) {
            target = await realpath(target);
            if (!inside(root, target)) return undefined;
          }
          const info = await stat(target);
          if (!info.isFile() && !info.isDirectory()) return undefined;
          return {
            name: dirent.name,
            path: relative === '' ? dirent.name : `${relative}/${dirent.name}`,
            size: info.isFile() ? info.size : null,
            modifiedAt: info.mtime.toISOString(),
            kind: info.isFile() ? 'file' : 'folder',
          };
        } catch {
          return undefined; // a broken link, or an entry removed meanwhile
        }
      }),
    );
    signal.throwIfAborted();
    return entries.filter((e) => e !== undefined).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async #readFile(real: string, relative: string, signal: AbortSignal): Promise<Buffer> {
    const { maxFileBytes } = this.config;
    const tooLarge = (bytes: number) =>
      new UpstreamError(this.name, `${JSON.stringify(relative)} is ${bytes} bytes, over the connector's maxFileBytes (${maxFileBytes})`, { status: 413, ...PERMANENT });
    let handle: FileHandle;
    try {
      handle = await open(real, OPEN_FLAGS);
    } catch (error) {
      throw this.#fsError(error, relative);
    }
    try {
      const info = await handle.stat();
      if (info.isDirectory()) throw new UpstreamError(this.name, `${JSON.stringify(relative)} is a folder, not a file (list it with format LIST)`, { status: 400, ...PERMANENT });
      if (!info.isFile()) throw new UpstreamError(this.name, `${JSON.stringify(relative)} is not a regular file`, { status: 400, ...PERMANENT });
      if (info.size > maxFileBytes) throw tooLarge(info.size);
      const buffer = await handle.readFile({ signal });
      // It may have grown since the stat.
      if (buffer.length > maxFileBytes) throw tooLarge(buffer.length);
      return buffer;
    } catch (error) {
      if (error instanceof ConnectorError || (error as Error).name === 'AbortError') throw error;
      throw this.#fsError(error, relative);
    } finally {
      await handle.close();
    }
  }

  /**
   * A file system error as the client sees it: a path that does not exist is a 404 (the
   * caller's mistake: the breaker does not count it); a denied one a 403; the rest are the
   * system failing. The message names the path as given, never the absolute one.
   */
  #fsError(error: unknown, relative: string): ConnectorError {
    const code = codeOf(error);
    const shown = JSON.stringify(relative);
    switch (code) {
      case 'ENOENT':
      case 'ENOTDIR':
        return new UpstreamError(this.name, `no file or folder ${shown} under the connector's root`, { status: 404, ...PERMANENT });
      case 'EISDIR':
        return new UpstreamError(this.name, `${shown} is a folder, not a file (list it with format LIST)`, { status: 400, ...PERMANENT });
      case 'EACCES':
      case 'EPERM':
        return new UpstreamError(this.name, `${shown} cannot be read: permission denied`, { status: 403, ...PERMANENT });
      case 'ELOOP':
        return new FilePathError(this.name, `path ${shown} is a symbolic link that changed while it was read, or a loop of links`);
      default:
        return new UpstreamError(this.name, `${shown} cannot be read (${code})`, { transient: false });
    }
  }

  /** The health check: the root is a folder this process can list and read. */
  protected async ping(): Promise<void> {
    const root = await this.#realRoot();
    if (!(await stat(root)).isDirectory()) throw new Error(`the root ${JSON.stringify(this.config.root)} is not a folder`);
    try {
      await access(root, constants.R_OK | constants.X_OK);
    } catch {
      throw new Error(`the root folder ${JSON.stringify(this.config.root)} cannot be read: permission denied`);
    }
  }

  /** Starts even when the root is missing: the connector is then unhealthy (and /readyz 503 if required). */
  override async start(): Promise<void> {
    const { ok, error } = await this.check();
    if (!ok) this.deps.logger.warn({ root: this.config.root, error }, 'files connector: its root folder is not readable');
  }
}

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).name ?? 'error';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decode(connector: string, relative: string, buffer: Buffer): string {
  try {
    return utf8.decode(buffer);
  } catch {
    throw new UpstreamError(connector, `${JSON.stringify(relative)} is not UTF-8 text`, PERMANENT);
  }
}

function parseJson(connector: string, relative: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UpstreamError(connector, `${JSON.stringify(relative)} is not valid JSON: ${(error as Error).message}`, PERMANENT);
  }
}

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;

function parseCsv(connector: string, relative: string, text: string): CsvRow[] {
  try {
    return parse(text, {
      columns: true,
      skip_empty_lines: true,
      trim: true,
      // Unquoted numbers become numbers, unquoted empty cells null; quoted cells stay text
      // ("007" keeps its zeros when quoted).
      cast: (value, context) => (context.header || context.quoting ? value : value === '' ? null : NUMBER.test(value) ? Number(value) : value),
    }) as CsvRow[];
  } catch (error) {
    throw new UpstreamError(connector, `${JSON.stringify(relative)} is not valid CSV: ${(error as Error).message}`, PERMANENT);
  }
}

/** The format a path's extension implies: a folder (empty, or ending in /) LIST, .json, .csv, else TEXT. */
export function formatOf(file: string): FileFormat {
  if (file === '' || /[\\/]$/.test(file)) return 'LIST';
  const extension = path.extname(file).toLowerCase();
  return extension === '.json' ? 'JSON' : extension === '.csv' ? 'CSV' : 'TEXT';
}

const SDL = `
"What @files reads a path as: LIST a folder's entries, TEXT a UTF-8 file, JSON a parsed JSON file, CSV a CSV file's rows as objects keyed by its header row."
enum FileFormat { LIST TEXT JSON CSV }
"""
Binds a field to a file or folder under a \`files\` connector's root. \`path\` is a template
({args.x}, {parent.x}, {context.user.x}) relative to the root, which it can never leave; without
it, the root itself. \`format\` defaults from the path: .json JSON, .csv CSV, a folder (no path,
or one ending in /) LIST, anything else TEXT.
"""
directive @files(connector: String!, path: String, format: FileFormat) on FIELD_DEFINITION
`;

interface FilesArgs {
  connector: string;
  path?: string | null;
  format?: FileFormat | null;
}

export const filesDirective: FieldDirective = {
  name: 'files',
  sdl: SDL,
  bind(use: DirectiveUse): FieldBinding | string[] {
    const args = use.args as unknown as FilesArgs;
    const problems: string[] = [];
    const template = new Template(args.path ?? '');
    problems.push(...template.problems(use.arguments.map((a) => a.name)));
    const isStatic = template.parts.every((p) => typeof p === 'string');
    const checked = isStatic ? canonicalPath(args.path ?? '') : '';
    if (typeof checked !== 'string') problems.push(checked.problem);
    // The shape the field needs, when the format is known now.
    const format = args.format ?? (isStatic ? formatOf(args.path ?? '') : undefined);
    const type = getNullableType(use.type);
    if ((format === 'LIST' || format === 'CSV') && !isListType(type)) {
      problems.push(`format ${format} reads a list; the field's type ${String(use.type)} is not one`);
    }
    if (format === 'TEXT' && !isLeafType(type)) {
      problems.push(`format TEXT reads a string; the field's type ${String(use.type)} must be a scalar (String)`);
    }
    if (problems.length > 0) return problems;

    const ttlMs = use.cache?.ttlMs;
    const staleIfOpen = use.cache?.staleIfOpen;
    const resolve: FieldResolver = async (parent, fieldArgs, ctx, info) => {
      const file = template.render({ args: fieldArgs, parent: parent ?? {}, context: { user: ctx.user } }, text);
      const connector = ctx.connectors[args.connector] as FilesConnector;
      const outcome = await connector.read(file, args.format ?? formatOf(file), { ttlMs, staleIfOpen });
      markStale(ctx, info, outcome.stale, args.connector);
      return outcome.value;
    };
    return { resolve };
  },
};

/**
 * A path as given (`/` or `\` separated, relative to the root) made canonical (`a/b`, the empty
 * string for the root), or the reason it is refused: absolute, or climbing out with `..`.
 */
export function canonicalPath(file: string): string | { problem: string } {
  const shown = JSON.stringify(file);
  if (file.includes('\0')) return { problem: `path ${shown} is not a valid path` };
  if (path.posix.isAbsolute(file) || path.win32.isAbsolute(file) || /^[A-Za-z]:/.test(file)) {
    return { problem: `path ${shown} is absolute; paths are relative to the connector's root` };
  }
  const segments = file.split(/[\\/]+/).filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return { problem: `path ${shown} leaves the connector's root` };
  return segments.join('/');
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** `type: files`: a local folder, and `@files` to bind fields to its files. */
export default defineConnectorType({
  type: 'files',
  schema: filesConfigSchema,
  create: (name, config, deps) => new FilesConnector(name, config, deps),
  directives: [filesDirective],
});
