/**
 * The mapping engine: runs each provider's mappings in an isolate of its own, in batches, with hard limits, and
 * turns what comes back into validated SCIM payloads or per-object errors.
 */
import ivm from 'isolated-vm';
import { ScimflowError, describeError } from '../errors/index.ts';
import type { ScimGroup, ScimUser } from '../scim/index.ts';
import type { MappingGroup, MappingProvider, MappingUser } from './builtin.ts';
import {
  MARKED_RESULT,
  NOT_ADOPTED,
  guestRuntime,
  type GuestApi,
  type GuestItemResult,
  type GuestStepAnswer,
} from './guest-runtime.ts';
import { callCpuNs } from './call-cpu.ts';
import { createCpuSampler } from './cpu-sampler.ts';
import { collectIsolateHandles } from './handles.ts';
import { DEFAULT_MAPPING_LIMITS, resolveMappingLimits, type MappingLimits } from './limits.ts';
import { mergeKernel } from './merge.ts';
import { mappingReads, pickColumns, pickFields, plainColumnSize, type MappingReads } from './reads.ts';
import type { ShapeCheck } from './schema-check.ts';
import { compileShape, shapeEncoder, type ShapeBuilder } from './shapes.ts';
import { blameMapping, checkMappedPayload, shapeCheckFor, type MappingObjectType } from './validate.ts';

/** One mapping as the engine runs it: a name (the order key) and a JavaScript function body. */
export interface MappingDefinition {
  name: string;
  expression: string;
}

/** The directory object a mapping of type `K` receives. */
export type MappingObjectOf<K extends MappingObjectType> = K extends 'user' ? MappingUser : MappingGroup;

/** The payload a mapping set of type `K` produces. */
export type MappingPayloadOf<K extends MappingObjectType> = K extends 'user' ? ScimUser : ScimGroup;

/** One object to map, with what was last sent for it (null on create). */
export interface MappingItem<K extends MappingObjectType = MappingObjectType> {
  object: MappingObjectOf<K>;
  link: Record<string, unknown> | null;
}

/** A batch of objects to run through one provider's mappings. */
export interface MappingEvaluationRequest<K extends MappingObjectType = MappingObjectType> {
  /** The isolate to use: one per provider (its id), or a separate key for previews. */
  key: string;
  /** Changes whenever the provider's mapping set or limits change; a new version is compiled before use. */
  version: string;
  objectType: K;
  /** The provider's mappings of this type, in any order: they apply in name order (code-unit comparison). */
  mappings: readonly MappingDefinition[];
  provider: MappingProvider;
  /** The frozen clock (ISO 8601): `now`, `new Date()` and `Date.now()` inside mappings. */
  now: string;
  /** The provider's limits; unset values come from the engine's defaults. */
  limits?: Partial<MappingLimits> | undefined;
  items: ReadonlyArray<MappingItem<K>>;
  /** Also return each mapping's result (for previews). @default false */
  withContributions?: boolean;
}

/** What one mapping returned for an object (null when it returned null or undefined). */
export interface MappingContribution {
  mapping: string;
  value: unknown;
}

/** Why an object could not be mapped: the mapping at fault (null when no single one is), the path and a message. */
export interface MappingFailure {
  code: 'ERR_MAPPING';
  mapping: string | null;
  path?: string;
  message: string;
}

/** The outcome of mapping one object. */
export type MappingResult<P = ScimUser | ScimGroup> =
  | { status: 'ok'; payload: P; contributions?: MappingContribution[] }
  | { status: 'skip'; mapping: string; reason?: string; contributions?: MappingContribution[] }
  | { status: 'error'; error: MappingFailure; contributions?: MappingContribution[] };

/** The outcome of compiling one expression: `line` (and `column`) are 1-based within the expression. */
export type MappingCompileResult = { ok: true } | { ok: false; line: number; column?: number; message: string };

/** The logger the engine reports isolate trouble to (pino-compatible). */
export interface MappingEngineLog {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** Options of `createMappingEngine`. */
export interface MappingEngineOptions {
  /** Limits for requests that set none. @default DEFAULT_MAPPING_LIMITS */
  defaultLimits?: Partial<MappingLimits>;
  log?: MappingEngineLog;
  /**
   * Called when V8 loses control of an isolate; isolated-vm's advice is to end the process.
   * @default logs, then `process.abort()`
   */
  onCatastrophicError?: (message: string) => void;
  /** How long one call into an isolate runs before it returns what it has, in ms. @default 20 */
  sliceMs?: number;
  /** Most isolates kept alive at once; beyond it the least recently used idle key's isolate is disposed. @default 256 */
  maxIsolates?: number;
  /**
   * How long an isolate may sit unused before it is disposed (each holds 15-50 MB of the worker's memory once used);
   * the key's next evaluation builds it again. @default 30000
   */
  idleMs?: number;
}

/** Counters for one provider's isolate. */
export interface MappingIsolateStats {
  key: string;
  /** How often the isolate was rebuilt after hitting its memory limit. */
  rebuilds: number;
  /** CPU time spent inside the provider's isolates, all rebuilds included. */
  cpuTimeMs: number;
  /** Whether an isolate is currently alive for the key. */
  alive: boolean;
}

/** Runs mappings in isolated-vm: one isolate per key, scripts compiled once per version, objects in batches. */
export interface MappingEngine {
  /** Syntax-checks an expression as the function body the engine runs; executes nothing. */
  compile(expression: string, objectType?: MappingObjectType): MappingCompileResult;
  /** Maps a batch; one result per item, in order. Throws only on a malformed request. */
  evaluate<K extends MappingObjectType>(
    request: MappingEvaluationRequest<K>,
  ): Promise<Array<MappingResult<MappingPayloadOf<K>>>>;
  /**
   * Builds the key's isolate and compiles its mapping set for the request's object type now, in turn with the key's
   * evaluations, so that the first batch does not wait for them; a failure is left for that batch to report.
   */
  prepare(request: Omit<MappingEvaluationRequest, 'items' | 'withContributions'>): Promise<void>;
  /** Frees the key's isolate once its running evaluation ends; the next evaluation builds a new one. */
  dispose(key: string): Promise<void>;
  /**
   * Frees every isolate, and collects their handles at once (a full garbage collection: for shutdown and teardown,
   * not a hot path; see `collectIsolateHandles`). The engine stays usable.
   */
  disposeAll(): Promise<void>;
  /** Counters per key. */
  stats(): MappingIsolateStats[];
}

interface CompiledSet {
  fingerprint: string;
  names: string[];
  expressions: string[];
  context: ivm.Context;
  compileErrors: Map<number, string>;
  step: ivm.Reference<GuestApi['step']>;
  salvage: ivm.Reference<GuestApi['salvage']>;
  /** The shapes the guest has numbered, in order (null: a descriptor the host refused). */
  shapes: Array<KnownShape | null>;
}

/** A shape the guest numbered: its builder, and the core schema's check of its objects (null: check each whole). */
interface KnownShape {
  build: ShapeBuilder;
  check: ShapeCheck | null;
}

interface ProviderIsolate {
  isolate: ivm.Isolate;
  memoryMb: number;
  sets: Map<MappingObjectType, CompiledSet>;
}

interface KeyState {
  current: ProviderIsolate | null;
  rebuilds: number;
  retiredCpuNs: bigint;
  tail: Promise<void>;
  queued: number;
  lastUsed: number;
  /** When its last evaluation ended (performance.now()). */
  idleSince: number;
  /** What each object type's mapping set reads, with the fingerprint it was worked out for. */
  reads: Map<MappingObjectType, { fingerprint: string; reads: MappingReads }>;
}

interface SubBatch {
  indices: number[];
  input: string;
  /** The columns `input` leaves out, sent as they are (GuestApi.step's `plain`). */
  plain: unknown[][] | null;
}

const NEEDS_BLAME = Symbol('needs blame');
const NO_EXTRA: { contributions?: MappingContribution[] } = Object.freeze({});
/**
 * Objects per call. Each call has a fixed cost on both threads (the round trip, the answer's copy, the wake-ups), and
 * a batch of 1,000 took 12 calls at 100: at 200 it takes 7, for about 0.2-0.9 µs less CPU per user (more when whole
 * objects are sent). The input of 200 default users is about 43,000 characters (only the fields mappings read are
 * sent); whole users are 68,000, which in two bytes per character cross V8's 128 KiB large-object size and still
 * measured faster than 100 per call. At 300, whole users were slower again.
 */
const STEP_ITEMS = 200;
const EDGE_STEP_ITEMS = 40;

/**
 * Splits a batch into the groups sent per call. A batch of up to two calls' worth goes in as few calls as fit: a
 * call costs about 25 µs of CPU time (half of it on the main thread), more than overlapping a small batch's host work saves. A larger
 * batch starts and ends with small groups, as the host's work on them (serialising the first, validating the last)
 * cannot overlap with the isolate's, and everything in between does; the groups between are of even size.
 */
function stepGroups(indices: number[]): number[][] {
  const count = indices.length;
  if (count <= 2 * STEP_ITEMS) return evenGroups(indices);
  const middle = evenGroups(indices.slice(EDGE_STEP_ITEMS, count - EDGE_STEP_ITEMS));
  return [indices.slice(0, EDGE_STEP_ITEMS), ...middle, indices.slice(count - EDGE_STEP_ITEMS)];
}

/** Consecutive groups of at most STEP_ITEMS, as few as that allows, their sizes differing by one at most. */
function evenGroups(indices: number[]): number[][] {
  const groups = Math.ceil(indices.length / STEP_ITEMS);
  return Array.from({ length: groups }, (_, group) =>
    indices.slice(Math.floor((group * indices.length) / groups), Math.floor(((group + 1) * indices.length) / groups)),
  );
}

const GUEST_SOURCE = guestRuntime.toString();
const KERNEL_SOURCE = `(${mergeKernel.toString()})`;
const SHAPER_SOURCE = `(${shapeEncoder.toString()})`;
const MIB = 1024 * 1024;
const SETUP_TIMEOUT_MS = 5000;
const SALVAGE_TIMEOUT_MS = 1000;
/** How often one object may be run again after stops that its CPU time does not explain (each with twice the time). */
const STARVED_RETRIES = 6;
/**
 * How often a running call's CPU time is read, for the case its isolate is disposed before the call returns:
 * charging the call's wall time instead made a starved machine's memory bomb use up the whole batch budget,
 * failing the innocent objects after it.
 */
const CPU_SAMPLE_MS = 50;
const NO_SNAPSHOT_FLAG = '--no-node-snapshot';

/** Builds a mapping engine. Requires Node to run with `--no-node-snapshot` (isolated-vm's requirement). */
export function createMappingEngine(options: MappingEngineOptions = {}): MappingEngine {
  assertNoNodeSnapshot();
  const defaults = resolveMappingLimits(options.defaultLimits, DEFAULT_MAPPING_LIMITS);
  const log = options.log;
  const sliceMs = options.sliceMs ?? 20;
  const onCatastrophic =
    options.onCatastrophicError ??
    ((message: string) => {
      log?.error({ message }, 'isolated-vm lost control of an isolate; aborting the process');
      process.abort();
    });
  const maxIsolates = options.maxIsolates ?? 256;
  const idleMs = options.idleMs ?? 30_000;
  let sweeper: NodeJS.Timeout | null = null;
  const keys = new Map<string, KeyState>();
  let checker: { isolate: ivm.Isolate; context: ivm.Context } | null = null;
  let clock = 0;
  let batchSequence = 0;
  const cpuSampler = createCpuSampler(CPU_SAMPLE_MS);

  function keyState(key: string): KeyState {
    let state = keys.get(key);
    if (!state) {
      state = {
        current: null,
        rebuilds: 0,
        retiredCpuNs: 0n,
        tail: Promise.resolve(),
        queued: 0,
        lastUsed: 0,
        idleSince: 0,
        reads: new Map(),
      };
      keys.set(key, state);
    }
    return state;
  }

  function serialized<T>(key: string, task: () => T | Promise<T>): Promise<T> {
    const state = keyState(key);
    state.queued += 1;
    const run = state.tail.then(task);
    state.tail = run.then(settle, settle);
    function settle(): void {
      state.queued -= 1;
      state.lastUsed = ++clock;
      state.idleSince = performance.now();
      evictIdle();
      sweeper ??= setInterval(sweepIdle, Math.max(10, idleMs / 2)).unref();
    }
    return run;
  }

  /** Disposes the isolates unused for `idleMs`; stops looking once none is alive. */
  function sweepIdle(): void {
    const now = performance.now();
    let alive = 0;
    for (const state of keys.values()) {
      if (state.current && state.queued === 0 && now - state.idleSince >= idleMs) retire(state, 'dispose');
      if (state.current) alive += 1;
    }
    if (alive === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = null;
    }
  }

  function evictIdle(): void {
    const alive = [...keys.entries()].filter(([, state]) => state.current !== null);
    if (alive.length <= maxIsolates) return;
    const idle = alive.filter(([, state]) => state.queued === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, state] of idle.slice(0, alive.length - maxIsolates)) {
      retire(state, 'dispose');
      keys.delete(key);
    }
  }

  function retire(state: KeyState, reason: 'memory' | 'dispose' | 'limits'): void {
    const current = state.current;
    if (!current) return;
    state.current = null;
    if (!current.isolate.isDisposed) {
      state.retiredCpuNs += readCpu(current.isolate) ?? 0n;
      current.isolate.dispose();
    }
    if (reason === 'memory') state.rebuilds += 1;
  }

  function isolateFor(key: string, state: KeyState, memoryMb: number): ProviderIsolate {
    const current = state.current;
    if (current && !current.isolate.isDisposed && current.memoryMb === memoryMb) return current;
    if (current) retire(state, current.isolate.isDisposed ? 'memory' : 'limits');
    const isolate = new ivm.Isolate({
      memoryLimit: memoryMb,
      onCatastrophicError: (message: string) => {
        log?.error({ key, message }, 'catastrophic isolate error');
        onCatastrophic(message);
      },
    });
    state.current = { isolate, memoryMb, sets: new Map() };
    return state.current;
  }

  async function compiledSet(
    holder: ProviderIsolate,
    objectType: MappingObjectType,
    fingerprint: string,
    mappings: readonly MappingDefinition[],
  ): Promise<CompiledSet> {
    const existing = holder.sets.get(objectType);
    if (existing && existing.fingerprint === fingerprint) return existing;
    if (existing) {
      holder.sets.delete(objectType);
      existing.context.release();
    }
    const context = await holder.isolate.createContext();
    const expressions = mappings.map((m) => m.expression);
    const api = (await context.evalClosure(
      `return (${GUEST_SOURCE})($0, $1, ${KERNEL_SOURCE}, ${SHAPER_SOURCE});`,
      [expressions, objectType],
      {
        arguments: { copy: true },
        result: { reference: true },
        timeout: SETUP_TIMEOUT_MS,
      },
    )) as ivm.Reference<GuestApi>;
    const compileErrors = JSON.parse(await api.get('compileErrors', { copy: true })) as Array<{
      index: number;
      message: string;
    }>;
    const set: CompiledSet = {
      fingerprint,
      names: mappings.map((m) => m.name),
      expressions,
      context,
      compileErrors: new Map(compileErrors.map((e) => [e.index, e.message])),
      step: await api.get('step', { reference: true }),
      salvage: await api.get('salvage', { reference: true }),
      shapes: [],
    };
    api.release();
    holder.sets.set(objectType, set);
    return set;
  }

  /** What the key's mapping set of `objectType` reads, worked out once per fingerprint (about 4 µs a time). */
  function readsOf(
    state: KeyState,
    objectType: MappingObjectType,
    fingerprint: string,
    mappings: readonly MappingDefinition[],
  ): MappingReads {
    const known = state.reads.get(objectType);
    if (known?.fingerprint === fingerprint) return known.reads;
    const reads = mappingReads(
      mappings.map((mapping) => mapping.expression),
      objectType,
    );
    state.reads.set(objectType, { fingerprint, reads });
    return reads;
  }

  function checkerContext(): { isolate: ivm.Isolate; context: ivm.Context } {
    if (!checker || checker.isolate.isDisposed) {
      const isolate = new ivm.Isolate({ memoryLimit: 16 });
      checker = { isolate, context: isolate.createContextSync() };
    }
    return checker;
  }

  function compile(expression: string, objectType: MappingObjectType = 'user'): MappingCompileResult {
    if (typeof expression !== 'string') throw new TypeError('compile: expression must be a string');
    const { isolate, context } = checkerContext();
    const lineCount = expression.split('\n').length;
    try {
      const script = isolate.compileScriptSync(
        `(function (${objectType}, provider, link, now) {"use strict";\n${expression}\n})`,
        {
          filename: 'mapping',
          lineOffset: -1,
        },
      );
      script.release();
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      const at = /\s*\[mapping:(\d+):(\d+)\]$/.exec(text);
      const message = at ? text.slice(0, at.index) : text;
      const line = at ? Math.min(Math.max(Number(at[1]), 1), lineCount) : 1;
      const column = at && Number(at[1]) <= lineCount ? Number(at[2]) : undefined;
      return {
        ok: false,
        line,
        ...(column === undefined ? {} : { column }),
        message: `SyntaxError: ${message.replace(/^SyntaxError: /, '')}`,
      };
    }
    const escaped = context.evalClosureSync(
      `try { new Function($1, 'provider', 'link', 'now', '"use strict";' + $0); return null; } catch (e) { return String(e && e.message); }`,
      [expression, objectType],
      { arguments: { copy: true }, result: { copy: true }, timeout: 1000 },
    ) as string | null;
    if (escaped !== null) {
      return {
        ok: false,
        line: 1,
        message: `SyntaxError: the expression must be one function body (${escaped}); check for an extra "}"`,
      };
    }
    return { ok: true };
  }

  async function evaluate<K extends MappingObjectType>(
    request: MappingEvaluationRequest<K>,
  ): Promise<Array<MappingResult<MappingPayloadOf<K>>>> {
    const { limits, mappings, fingerprint } = planned(request);
    return serialized(
      request.key,
      () => runBatch(request, mappings, fingerprint, limits) as Promise<Array<MappingResult<MappingPayloadOf<K>>>>,
    );
  }

  /** A checked request's limits, its mappings in the order they apply, and the fingerprint of what is compiled. */
  function planned(request: MappingEvaluationRequest): {
    limits: MappingLimits;
    mappings: MappingDefinition[];
    fingerprint: string;
  } {
    checkRequest(request);
    const limits = resolveMappingLimits(request.limits, defaults);
    const mappings = [...request.mappings].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const fingerprint = JSON.stringify([request.version, mappings.map((m) => [m.name, m.expression])]);
    return { limits, mappings, fingerprint };
  }

  async function prepare(request: Omit<MappingEvaluationRequest, 'items' | 'withContributions'>): Promise<void> {
    const { limits, mappings, fingerprint } = planned({ ...request, items: [] });
    await serialized(request.key, async () => {
      const holder = isolateFor(request.key, keyState(request.key), limits.memoryMb);
      await compiledSet(holder, request.objectType, fingerprint, mappings);
    });
  }

  async function runBatch(
    request: MappingEvaluationRequest,
    mappings: MappingDefinition[],
    fingerprint: string,
    limits: MappingLimits,
  ): Promise<MappingResult[]> {
    const state = keyState(request.key);
    const withContributions = request.withContributions === true;
    const names = mappings.map((m) => m.name);
    // Made by Array.from, not `new Array(n)`: that call site's arrays live through their batch, so V8 pretenured them,
    // and an old results array kept every result and payload of its batch alive through each minor GC until the next
    // full one. Bench driver, batches of 100 (a sync page), 500,000 users: the host promoted 333 MB instead of 44,
    // V8's GC threads used 1.34 µs/user instead of 0.40, the process 6.0 µs/user instead of 5.1.
    const results = Array.from<MappingResult | undefined>({ length: request.items.length });
    const inputCap = Math.min(4 * MIB, Math.floor((limits.memoryMb * MIB) / 8));
    const prefix = `{"now":${JSON.stringify(request.now)},"provider":${JSON.stringify(request.provider)},"contributions":`;
    const budget = { spentNs: 0n, limitNs: BigInt(limits.batchTimeoutMs) * 1_000_000n };
    const ready: Array<{
      indices: number[];
      entries: Array<string | unknown[]>;
      cleared: boolean;
      shapes: ReadonlyArray<KnownShape | null>;
    }> = [];
    const needBlame: number[] = [];
    const fail = (index: number, message: string, mapping: string | null = null): void => {
      results[index] = { status: 'error', error: { code: 'ERR_MAPPING', mapping, message } };
    };
    const drain = (): void => {
      for (const { indices, entries, cleared, shapes } of ready) {
        entries.forEach((entry, position) => {
          const index = indices[position] as number;
          let result: MappingResult | typeof NEEDS_BLAME;
          if (typeof entry !== 'string') {
            const number: unknown = Array.isArray(entry) ? entry[0] : undefined;
            const shape = typeof number === 'number' ? shapes[number] : undefined;
            const payload = shape?.build(entry);
            result =
              payload === undefined || shape == null
                ? errorResult('the sandbox sent a result that fits none of its shapes')
                : finishPayload(payload, request.objectType, shape.check?.(entry) === true);
          } else if (entry.startsWith(MARKED_RESULT)) {
            const timed = JSON.parse(entry.slice(MARKED_RESULT.length)) as GuestItemResult;
            const outcome = cleared && 's' in timed && timed.s !== undefined ? timed.s : timed;
            result = finish(outcome, request.objectType, names, withContributions);
          } else {
            result = finishPayload(JSON.parse(entry), request.objectType);
          }
          if (result === NEEDS_BLAME) needBlame.push(index);
          else results[index] = result;
        });
      }
      ready.length = 0;
    };

    // Of each object only the fields some mapping can read: the defaults read 7 of a user's 10 (63 % of its JSON).
    // The last payload roughly doubles an item's JSON; it is left out when no mapping can read it.
    const { fields, link: sendLink } = readsOf(state, request.objectType, fingerprint, mappings);
    // The objects' fields as one array per field when they all have the same ones (no object per item to build here
    // nor to parse there, no key written per value), else the objects as one array; their links as another. A
    // column of plain values (strings, booleans, null, numbers) is not written as JSON at all: isolated-vm copies it
    // as it is, for less of this thread's CPU than JSON.stringify takes, and the isolate parses nothing.
    const serialise = (indices: number[]): { json: string; plain: unknown[][] | null; size: number } => {
      const list = indices.map((index) => request.items[index]?.object ?? null);
      const picked = fields === null ? null : pickColumns(list, fields);
      let objects: string;
      const plain: unknown[][] = [];
      let size = 0;
      if (picked === null) {
        objects = `"items":${JSON.stringify(list.map((object) => pickFields(object, fields)))}`;
      } else {
        const written = picked.columns.map((column) => {
          const plainSize = plainColumnSize(column);
          if (plainSize === null) return column;
          plain.push(column);
          size += plainSize;
          return 0;
        });
        objects = `"count":${list.length},"fields":${JSON.stringify(picked.names)},"columns":${JSON.stringify(written)}`;
      }
      const json = sendLink
        ? `${objects},"links":${JSON.stringify(indices.map((index) => request.items[index]?.link ?? null))}`
        : objects;
      return { json, plain: plain.length > 0 ? plain : null, size: size + json.length };
    };

    function* subBatches(indices: Iterable<number>, contributions: boolean): Generator<SubBatch> {
      const head = `${prefix}${String(contributions)},`;
      const pending = stepGroups([...indices]);
      while (pending.length > 0) {
        const group = pending.shift() as number[];
        let serialised: ReturnType<typeof serialise>;
        try {
          serialised = serialise(group);
        } catch (error) {
          if (group.length > 1) {
            pending.unshift(group.slice(0, group.length >> 1), group.slice(group.length >> 1));
            continue;
          }
          fail(group[0] as number, `the object could not be serialised for the sandbox: ${describeError(error)}`);
          continue;
        }
        const { json, plain, size } = serialised;
        if (size > inputCap) {
          if (group.length > 1) {
            pending.unshift(group.slice(0, group.length >> 1), group.slice(group.length >> 1));
            continue;
          }
          fail(group[0] as number, `the object is ${size} characters, more than the sandbox accepts (${inputCap})`);
          continue;
        }
        yield { indices: group, input: `${head}${json}}`, plain };
      }
    }

    const runSub = async (sub: SubBatch, idle: () => void): Promise<number[]> => {
      const { indices } = sub;
      const holder = isolateFor(request.key, state, limits.memoryMb);
      let set: CompiledSet;
      try {
        set = await compiledSet(holder, request.objectType, fingerprint, mappings);
      } catch (error) {
        if (holder.isolate.isDisposed) return indices;
        for (const index of indices) fail(index, `the mappings could not be loaded: ${describeError(error)}`);
        return [];
      }
      const broken = [...set.compileErrors.keys()].sort((a, b) => a - b)[0];
      if (broken !== undefined) {
        const message = compileMessage(set, broken, request.objectType);
        for (const index of indices) fail(index, message, set.names[broken] ?? null);
        return [];
      }
      let input: string | null = sub.input;
      let plain: unknown[][] | null = sub.plain;
      let cursor = 0;
      let resent = false;
      // Stops its CPU time does not explain, counted for the object at `starvedAt` (the count restarts with progress).
      let starvedRetries = 0;
      let starvedAt = -1;
      // The CPU time the object at `starvedAt` used in its stopped runs: once it reaches the limit, it is stopped.
      let starvedCpuNs = 0n;
      const limitNs = BigInt(limits.objectTimeoutMs) * 1_000_000n;
      const batchId = ++batchSequence;
      /**
       * Takes the answer's results in order; returns its `stopped` field. `cleared`: the call's CPU time shows that no
       * object in it can have used its per-object limit, so an object the guest's clock found over it was only slowed
       * down (a starved machine) and keeps the result it produced.
       */
      const accept = (answer: GuestStepAnswer, cleared: boolean, stopMessage?: string): number => {
        const { stopped, results: entries, shapes } = answer;
        for (const descriptor of Array.isArray(shapes) ? shapes : []) {
          const build = compileShape(String(descriptor));
          set.shapes.push(build && { build, check: shapeCheckFor(request.objectType, String(descriptor)) });
        }
        const count = entries.length;
        if (count > 0)
          ready.push({ indices: indices.slice(cursor, cursor + count), entries, cleared, shapes: set.shapes });
        cursor += count;
        if (stopMessage !== undefined && stopped === cursor) {
          const index = indices[cursor++];
          // The mapping that was running when the call was stopped is the one blamed (none: between mappings).
          if (index !== undefined) fail(index, stopMessage, set.names[answer.mapping ?? -1] ?? null);
        }
        return stopped;
      };
      // A call stopped before the guest took this sub's input ran nothing of it: send the input once more.
      const resend = (stopped: number): boolean => {
        if (stopped !== NOT_ADOPTED || cursor !== 0 || resent) return false;
        input = sub.input;
        plain = sub.plain;
        resent = true;
        return true;
      };
      while (cursor < indices.length) {
        const remainingMs = Number(budget.limitNs - budget.spentNs) / 1e6;
        if (remainingMs <= 0) break;
        const before = cursor;
        // The timeout is wall-clock time; an object stopped by it without using its CPU (or what was left of the
        // batch's) runs again with twice the time, so a starved machine's wait for a core cannot fail it: the CPU
        // time charged after each call, not the clock, decides.
        const patience = cursor === starvedAt ? 2 ** starvedRetries : 1;
        const allowedMs = Math.min(limits.objectTimeoutMs + sliceMs, remainingMs);
        const callTimeout = Math.max(1, Math.ceil(allowedMs * patience));
        const cpuBefore = readCpu(holder.isolate);
        const processBefore = process.cpuUsage();
        const sampler = cpuSampler.start(() => readCpu(holder.isolate));
        /** Ends the call's sampling and charges the batch the CPU time the call used; returns it. */
        const charge = (): bigint => {
          sampler.stop();
          const used = callCpuNs(readCpu(holder.isolate), cpuBefore, processBefore, sampler.last);
          budget.spentNs += used;
          return used;
        };
        const call = set.step.apply(
          undefined,
          [input, plain, cursor, sliceMs, limits.objectTimeoutMs, limits.maxOutputBytes, batchId, set.shapes.length],
          {
            arguments: { copy: true },
            result: { copy: true },
            timeout: callTimeout,
          },
        ) as Promise<GuestStepAnswer>;
        input = null;
        plain = null;
        try {
          idle();
        } catch (error) {
          await call.catch(() => undefined);
          sampler.stop();
          throw error;
        }
        let stopMessage: string;
        let retry = false;
        let cleared = false;
        try {
          const raw = await call;
          const used = charge();
          // Less CPU for the whole call than one object may use: no object in it can have reached its limit.
          const stopped = accept(raw, used < limitNs);
          if (stopped !== NOT_ADOPTED || resend(stopped)) continue;
          stopMessage = 'the sandbox lost the batch it was given';
        } catch (error) {
          const used = charge();
          if (holder.isolate.isDisposed) {
            log?.warn(
              { key: request.key, error: describeError(error) },
              'mapping isolate hit its memory limit; rebuilding it',
            );
            retire(state, 'memory');
            return indices.slice(cursor);
          }
          const described = describeError(error);
          const batchLimited = allowedMs < limits.objectTimeoutMs + sliceMs;
          stopMessage = stopReason(described, batchLimited, limits);
          // isolated-vm's timeout is wall-clock time: on a starved machine it can stop an object that used far less
          // CPU than its limit. Such an object runs again (a few times at most); one that used its CPU is stopped.
          // The few times are per object: counted for a whole group, a busy machine's fourth stop failed whichever
          // innocent object was running then (one object in about each 100 of an incremental push under load).
          if (cursor !== starvedAt) {
            starvedAt = cursor;
            starvedRetries = 0;
            starvedCpuNs = 0n;
          }
          starvedCpuNs += used;
          cleared = used < limitNs;
          retry =
            /timed out/i.test(described) &&
            starvedCpuNs < limitNs &&
            budget.spentNs < budget.limitNs &&
            starvedRetries < STARVED_RETRIES;
          if (retry) starvedRetries += 1;
        }
        try {
          const options = { arguments: { copy: true }, result: { copy: true }, timeout: SALVAGE_TIMEOUT_MS } as const;
          const answer = await set.salvage.apply(undefined, [cursor, batchId, retry, set.shapes.length], options);
          if (resend(accept(answer, cleared, retry ? undefined : stopMessage)) || retry) continue;
        } catch (salvageError) {
          if (holder.isolate.isDisposed) {
            retire(state, 'memory');
            return indices.slice(cursor);
          }
          stopMessage = `the sandbox failed: ${describeError(salvageError)}`;
        }
        if (cursor === before) {
          for (const index of indices.slice(cursor)) fail(index, stopMessage);
          return [];
        }
      }
      for (const index of indices.slice(cursor)) fail(index, budgetMessage(limits));
      return [];
    };

    const runAll = async (indices: Iterable<number>, contributions: boolean): Promise<void> => {
      const subs = subBatches(indices, contributions);
      let next = subs.next();
      while (!next.done) {
        const current = next.value;
        let prefetched = false;
        const unfinished = await runSub(current, () => {
          if (!prefetched) next = subs.next();
          prefetched = true;
          drain();
        });
        if (!prefetched) next = subs.next();
        for (const index of unfinished) {
          for (const single of subBatches([index], contributions)) {
            if ((await runSub(single, drain)).length > 0) {
              fail(
                index,
                `the mappings used more than the memory limit of ${limits.memoryMb} MB; the sandbox was rebuilt`,
              );
            }
          }
        }
      }
      drain();
    };

    await runAll(request.items.keys(), withContributions);
    if (needBlame.length > 0) {
      const again = needBlame.splice(0);
      await runAll(again, true);
      for (const index of needBlame) fail(index, 'the mapped object is invalid');
    }
    const finished = Array.from(results, (result) => result ?? errorResult(budgetMessage(limits)));
    // Emptied, the working array keeps no payload alive: it is often in the old generation by the time the batch
    // ends, and a dead old array holds what it points to through every minor GC until the next full one. Measured on
    // the mapping bench's host heap: 7-17 MB promoted per minor GC (30-300 ms pauses under load) before, < 1.4 MB after.
    results.length = 0;
    return finished;
  }

  function compileMessage(set: CompiledSet, index: number, objectType: MappingObjectType): string {
    const checked = compile(set.expressions[index] ?? '', objectType);
    const detail = checked.ok
      ? (set.compileErrors.get(index) ?? 'does not compile')
      : `${checked.message} (line ${checked.line})`;
    return `the mapping does not compile: ${detail}`;
  }

  return {
    compile,
    evaluate,
    prepare,
    dispose: (key) =>
      serialized(key, () => {
        const state = keys.get(key);
        if (!state) return;
        retire(state, 'dispose');
        if (state.queued === 1) keys.delete(key);
      }),
    disposeAll: async () => {
      await Promise.all(
        [...keys.keys()].map((key) =>
          serialized(key, () => {
            const state = keyState(key);
            retire(state, 'dispose');
            if (state.queued === 1) keys.delete(key);
          }),
        ),
      );
      if (checker && !checker.isolate.isDisposed) checker.isolate.dispose();
      checker = null;
      if (sweeper) clearInterval(sweeper);
      sweeper = null;
      collectIsolateHandles();
    },
    stats: () =>
      [...keys.entries()].map(([key, state]) => {
        const live = state.current && !state.current.isolate.isDisposed ? (readCpu(state.current.isolate) ?? 0n) : 0n;
        return {
          key,
          rebuilds: state.rebuilds,
          cpuTimeMs: Number(state.retiredCpuNs + live) / 1e6,
          alive: state.current !== null && !state.current.isolate.isDisposed,
        };
      }),
  };
}

/**
 * The result of a bare merged payload (no contributions came with it): ok once checked, else it needs blame.
 * `vouched`: its shape's check passed (checkMappedPayload's).
 */
function finishPayload(
  merged: unknown,
  objectType: MappingObjectType,
  vouched = false,
): MappingResult | typeof NEEDS_BLAME {
  const check = checkMappedPayload(objectType, merged, vouched);
  return check.ok ? okResult(check.payload) : NEEDS_BLAME;
}

function finish(
  outcome: GuestItemResult,
  objectType: MappingObjectType,
  names: string[],
  withContributions: boolean,
): MappingResult | typeof NEEDS_BLAME {
  const named = outcome.c?.map((value, i) => ({ mapping: names[i] ?? '?', value }));
  const extra = withContributions && named ? { contributions: named } : NO_EXTRA;
  if ('k' in outcome) {
    return {
      status: 'skip',
      mapping: names[outcome.k] ?? '?',
      ...(outcome.why === undefined ? {} : { reason: outcome.why }),
      ...extra,
    };
  }
  if ('e' in outcome) {
    const error: MappingFailure = {
      code: 'ERR_MAPPING',
      mapping: outcome.m >= 0 ? (names[outcome.m] ?? null) : null,
      message: outcome.e,
    };
    if (outcome.p !== undefined) error.path = outcome.p;
    return { status: 'error', error, ...extra };
  }
  if (!named) return finishPayload(outcome.v, objectType);
  const check = checkMappedPayload(objectType, outcome.v);
  if (check.ok)
    return withContributions ? { status: 'ok', payload: check.payload, contributions: named } : okResult(check.payload);
  const path = check.path.join('.');
  const error: MappingFailure = {
    code: 'ERR_MAPPING',
    mapping: blameMapping(check.path, named),
    message: path === '' ? check.message : `${path}: ${check.message}`,
  };
  if (path !== '') error.path = path;
  return { status: 'error', error, ...extra };
}

/** Why a call into the isolate was stopped, for the object that was running. */
function stopReason(error: string, batchLimited: boolean, limits: MappingLimits): string {
  if (/timed out/i.test(error)) {
    return batchLimited
      ? budgetMessage(limits)
      : `the mappings ran longer than the per-object limit of ${limits.objectTimeoutMs} ms and were stopped`;
  }
  // isolated-vm answers a dynamic import() with this host-level error, which no try/catch in the isolate sees.
  if (error === 'Not supported')
    return 'the sandbox refused an operation (Not supported): import() is not available to mappings';
  return `the sandbox stopped the mappings: ${error}`;
}

/**
 * `{ status: 'ok', payload }`, built from an empty object: a literal with both keys has an allocation site, and once
 * a site's objects outlive minor GCs (a batch's results live until it ends) V8 allocates them in the old generation
 * (pretenuring); each old result then keeps its young payload alive through every minor GC until the next full one.
 * Measured on the host heap, default mappings, 50,000 users x 3 rounds in batches of 1,000: 95 -> 22 MB promoted,
 * minor GC pauses 225 -> 86 ms.
 */
function okResult(payload: ScimUser | ScimGroup): MappingResult {
  const result: Partial<{ status: 'ok'; payload: ScimUser | ScimGroup }> = {};
  result.status = 'ok';
  result.payload = payload;
  return result as MappingResult;
}

function errorResult(message: string): MappingResult {
  return { status: 'error', error: { code: 'ERR_MAPPING', mapping: null, message } };
}

function budgetMessage(limits: MappingLimits): string {
  return `not evaluated: the batch used up its CPU limit of ${limits.batchTimeoutMs} ms`;
}

function readCpu(isolate: ivm.Isolate): bigint | undefined {
  try {
    return isolate.cpuTime;
  } catch {
    return undefined;
  }
}

function checkRequest(request: MappingEvaluationRequest): void {
  if (typeof request.key !== 'string' || request.key === '')
    throw new TypeError('evaluate: key must be a non-empty string');
  if (typeof request.version !== 'string') throw new TypeError('evaluate: version must be a string');
  if (request.objectType !== 'user' && request.objectType !== 'group')
    throw new TypeError('evaluate: objectType must be user or group');
  if (!Array.isArray(request.items)) throw new TypeError('evaluate: items must be an array');
  if (!Array.isArray(request.mappings)) throw new TypeError('evaluate: mappings must be an array');
  for (const mapping of request.mappings as readonly unknown[]) {
    const { name, expression } = (mapping ?? {}) as Partial<MappingDefinition>;
    if (typeof name !== 'string' || typeof expression !== 'string') {
      throw new TypeError('evaluate: every mapping needs a string name and expression');
    }
  }
  if (typeof request.now !== 'string' || Number.isNaN(Date.parse(request.now))) {
    throw new TypeError('evaluate: now must be an ISO 8601 time');
  }
}

function assertNoNodeSnapshot(): void {
  const inArgs = process.execArgv.includes(NO_SNAPSHOT_FLAG);
  const inEnv = (process.env['NODE_OPTIONS'] ?? '').split(/\s+/).includes(NO_SNAPSHOT_FLAG);
  if (!inArgs && !inEnv) {
    throw new ScimflowError(
      'ERR_CONFIG',
      `the mapping sandbox needs Node started with ${NO_SNAPSHOT_FLAG} (isolated-vm requires it)`,
    );
  }
}
