/** The Temporal CLI release scimflow builds with `go install` (later tags carry a `replace` directive). */
export declare const TEMPORAL_CLI_VERSION: string;

/** The search attributes every scimflow namespace needs, as name to type. */
export declare const SEARCH_ATTRIBUTES: Readonly<Record<string, string>>;

/** The dynamic config every dev server starts with, as key to value: one node's settings, not a cluster's. */
export declare const DEV_SERVER_DYNAMIC_CONFIG: Readonly<Record<string, number | boolean>>;

/** The per-user cache folder scimflow keeps tools in: `${XDG_CACHE_HOME:-~/.cache}/scimflow`. */
export declare function scimflowCacheDir(env?: NodeJS.ProcessEnv): string;

/** The SQLite file in which the embedded Temporal server of `scimflow start` keeps its state across restarts. */
export declare function embeddedTemporalStatePath(env?: NodeJS.ProcessEnv): string;

/** Where `setup` installs the Temporal CLI when none is found elsewhere. */
export declare function cachedTemporalBinaryPath(env?: NodeJS.ProcessEnv): string;

/** True when `file` is a regular file this process may execute. */
export declare function isExecutableFile(file: string): boolean;

/** The first executable called `name` on `PATH`, or null. */
export declare function findOnPath(name: string, env?: NodeJS.ProcessEnv): string | null;

/** The Temporal CLI to use: `$SCIMFLOW_TEMPORAL_BIN`, else `temporal` on PATH, else the cached build; null if none. */
export declare function findTemporalBinary(env?: NodeJS.ProcessEnv): string | null;

/** Asks the OS for a free TCP port on 127.0.0.1 and releases it. */
export declare function freePort(): Promise<number>;

/** True when nothing listens on 127.0.0.1:`port` yet (so the dev server could bind it). */
export declare function isPortFree(port: number): Promise<boolean>;

/** False when /proc shows that what listens on `port` is not process `pid`; true when it is or /proc cannot tell. */
export declare function isListeningProcess(pid: number, port: number): boolean;

/** Inputs of {@link devServerArgs}: every port already chosen. */
export interface DevServerArgsInput {
  port: number;
  httpPort: number;
  metricsPort: number;
  uiPort: number | null;
  headless: boolean;
  dbFilename?: string | undefined;
  namespace: string;
  logLevel: string;
  /** Dynamic config values, key to value. @default DEV_SERVER_DYNAMIC_CONFIG */
  dynamicConfig?: Readonly<Record<string, number | boolean | string>> | undefined;
  extraArgs: readonly string[];
}

/** Builds the `temporal server start-dev` arguments for the given ports and options. */
export declare function devServerArgs(input: DevServerArgsInput): string[];

/** Options of {@link startTemporalDevServer}; every port defaults to a free one. */
export interface TemporalDevServerOptions {
  /** Path of the Temporal CLI. @default findTemporalBinary() */
  binary?: string | undefined;
  /** Frontend gRPC port. */
  port?: number | undefined;
  /** HTTP API port. */
  httpPort?: number | undefined;
  /** Prometheus `/metrics` port. */
  metricsPort?: number | undefined;
  /** Web UI port; ignored when headless. */
  uiPort?: number | undefined;
  /** When a port given above is taken, use a free one instead of failing. @default false */
  fallbackToFreePorts?: boolean | undefined;
  /**
   * Finds a free port; startup asks again, for every port it may choose, when the server lost one to another process.
   * @default freePort
   */
  choosePort?: (() => Promise<number>) | undefined;
  /** Unref the server process so it does not keep the caller alive (it is still stopped when the caller exits). */
  detached?: boolean | undefined;
  /**
   * Run the server in a process group of its own, so that a signal to the caller's group (a terminal's Ctrl-C) reaches
   * only the caller, which stops the server when it is done with it. It is still killed when the caller exits, and
   * when it dies where util-linux's setpriv is found (Linux).
   * @default false
   */
  ownProcessGroup?: boolean | undefined;
  /** Run without the Web UI. @default false */
  headless?: boolean | undefined;
  /**
   * SQLite file that keeps state across restarts; its folder is created, and `<file>.lock` keeps a second server off
   * it (rejects with `code: 'ESTATEUNAVAILABLE'` when the folder cannot be created or a live process holds the lock).
   * @default in memory
   */
  dbFilename?: string | undefined;
  /** Namespace created at launch (`default` always exists). @default 'default' */
  namespace?: string | undefined;
  /** Server log level: debug, info, warn, error, never. @default 'warn' */
  logLevel?: string | undefined;
  /** Dynamic config values, key to value. @default DEV_SERVER_DYNAMIC_CONFIG */
  dynamicConfig?: Readonly<Record<string, number | boolean | string>> | undefined;
  /** More `start-dev` arguments, e.g. `['--dynamic-config-value', 'KEY=VALUE']`. */
  extraArgs?: readonly string[] | undefined;
  /** How long to wait for the frontend to answer. @default 60000 */
  timeoutMs?: number | undefined;
}

/** A running dev server, killed with this process if not stopped before. */
export interface TemporalDevServer {
  /** Frontend gRPC address, `127.0.0.1:PORT`. */
  address: string;
  /** Web UI URL, or null when headless. */
  uiUrl: string | null;
  /** Process id of the server. */
  pid: number;
  /** The server's last output lines (stdout and stderr), for error reports. */
  recentOutput(): string;
  /** True once the server process has exited. */
  exited(): boolean;
  /** Sends SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. */
  stop(): Promise<void>;
}

/**
 * Starts `temporal server start-dev` on 127.0.0.1 and resolves once its frontend answers gRPC health checks; started
 * again on new ports (up to 5 times) when another process took a chosen port before the server bound it.
 */
export declare function startTemporalDevServer(options?: TemporalDevServerOptions): Promise<TemporalDevServer>;
