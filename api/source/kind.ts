/**
 * What `/Users` and `/Groups` of a source do alike: reading one resource (404 when the source does not see it),
 * locking it for a write (with `If-Match`), rendering with the related resources (a user's groups, a group's members,
 * read in the same statement) only when the projection asks for them, and listing. The directory's own writes refuse a
 * userName or displayName another resource has in any letter case (ERR_CONFLICT, answered as 409 `uniqueness`).
 */
import {
  findUnstorableText,
  inTransaction,
  UNSTORABLE_TEXT,
  type Db,
  type Queryable,
  type SourceView,
} from '../../db/index.ts';
import type { ResourceSchema } from '../../scim/resource-schema.ts';
import { normalizeResource, type ResourceDocument } from '../../scim/resource.ts';
import { badRequest, ScimServiceError } from '../../scim/service-error.ts';
import type { ListQuery } from './list-query.ts';
import { checkIfMatch, project, projectionWants, type Projection } from './render.ts';
import { takeOwnership, type ListRequest, type LoadOptions, type Versioned } from './store.ts';

/** Who is asking and where the answer's URLs point. */
export interface SourceRequest {
  db: Db;
  source: SourceView;
  /** The source's SCIM base URL, e.g. `http://host/source/scim/entra/v2`. */
  base: string;
  /** Records a write by this source in the audit log, inside the write's transaction. */
  audit: (q: Queryable, action: string, objectId: string) => Promise<void>;
}

/** A resource with its ETag, as handlers return it. */
export interface Rendered {
  body: Record<string, unknown>;
  version: string;
}

/** A SCIM attribute path from a path into a resource document: `emails[0].value`, `urn:…:User:department`. */
function attributePath(path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((text, part, i) => {
    if (typeof part === 'number') return `${text}[${part}]`;
    if (i === 0) return part;
    return `${text}${i === 1 && text.startsWith('urn:') ? ':' : '.'}${part}`;
  }, '');
}

/**
 * The canonical document of a resource a source sent (POST, PUT, or the result of a PATCH), which the directory
 * stores: text PostgreSQL cannot store (U+0000, an unpaired surrogate) is a 400 naming the attribute, not a 500 that
 * an IdP would send again for ever.
 */
export function storableResource(resource: ResourceSchema, input: unknown): ResourceDocument {
  const doc = normalizeResource(resource, input);
  const found = findUnstorableText(doc);
  if (found !== undefined) {
    const where = found.path.length === 0 ? resource.name : attributePath(found.path);
    throw badRequest('invalidValue', `${where} ${found.inKey ? `has a key that ${UNSTORABLE_TEXT}` : UNSTORABLE_TEXT}`);
  }
  return doc;
}

/** One kind of resource a source serves: how its rows are read, checked for uniqueness and rendered. */
export interface SourceKind<T extends { id: string }, R> {
  type: 'user' | 'group';
  resource: ResourceSchema;
  /** `User` or `Group`, as error messages name it. */
  noun: string;
  /** The related attribute rendered from other rows (`groups`, `members`). */
  related: string;
  /** One object the source sees (locked, or with its related resources, as `options` say), or null. */
  load(q: Queryable, source: SourceView, id: string, options?: LoadOptions): Promise<Versioned<T, R> | null>;
  /** A page, each object with its related resources when `withRelated`, in the same statement. */
  list(
    q: Queryable,
    source: SourceView,
    request: ListRequest,
    withRelated: boolean,
  ): Promise<{ total: number; items: Versioned<T, R>[] }>;
  /** Inserts a new object from `doc` (in the caller's transaction). */
  insert: (q: Queryable, doc: ResourceDocument) => Promise<{ id: string }>;
  /** Writes `doc` over `current`: the column update, in the caller's transaction. */
  update(q: Queryable, current: T, doc: ResourceDocument): Promise<unknown>;
  /** The resource; `related` undefined when the projection leaves it out. */
  render(object: T, version: string, related: R | undefined, base: string): Record<string, unknown>;
}

/** The operations shared by both kinds, bound to `kind`. */
export function sourceResources<T extends { id: string }, R>(kind: SourceKind<T, R>) {
  const notFound = (id: string) => new ScimServiceError(404, `${kind.noun} ${id} not found`);

  /** The resource as `projection` shows it; `item` carries its related resources when the projection wants them. */
  function render(request: SourceRequest, item: Versioned<T, R>, projection: Projection): Rendered {
    const body = kind.render(item.object, item.version, item.related, request.base);
    return { body: project(kind.resource, body, projection), version: item.version };
  }

  /** The resource as it is now, with its related resources when `projection` (if given) wants them. */
  async function reload(
    q: Queryable,
    request: SourceRequest,
    id: string,
    projection?: Projection,
  ): Promise<Versioned<T, R>> {
    const related = projection !== undefined && projectionWants(kind.resource, projection, kind.related);
    const item = await kind.load(q, request.source, id, { related });
    if (!item) throw notFound(id);
    return item;
  }

  /** The resource locked for this transaction's write, after its `If-Match` check. */
  async function locked(q: Queryable, request: SourceRequest, id: string, ifMatch: string | undefined) {
    const current = await kind.load(q, request.source, id, { lock: true });
    if (!current) throw notFound(id);
    checkIfMatch(ifMatch, current.version);
    return current;
  }

  /** Writes `doc` over `current` (after PUT or PATCH), in the caller's transaction; the source then owns it. */
  async function write(q: Queryable, request: SourceRequest, current: Versioned<T, R>, doc: ResourceDocument) {
    await kind.update(q, current.object, doc);
    await takeOwnership(q, request.source, kind.type, current.object.id);
    await request.audit(q, `${kind.type}.update`, current.object.id);
  }

  return {
    render,
    reload,
    locked,
    write,

    /** POST: a new resource the source owns; `then` runs after the insert, in the same transaction. */
    create: async (
      request: SourceRequest,
      body: unknown,
      projection: Projection,
      then: (q: Queryable, id: string) => Promise<void> = () => Promise.resolve(),
    ): Promise<Rendered> => {
      const doc = storableResource(kind.resource, body);
      return inTransaction(request.db, async (client) => {
        const { id } = await kind.insert(client, doc);
        await takeOwnership(client, request.source, kind.type, id);
        await request.audit(client, `${kind.type}.create`, id);
        await then(client, id);
        return render(request, await reload(client, request, id, projection), projection);
      });
    },

    /** PUT `/{id}`: `body` replaces every writable attribute; `then` runs after, in the same transaction. */
    replace: async (
      request: SourceRequest,
      id: string,
      body: unknown,
      ifMatch: string | undefined,
      projection: Projection,
      then: (q: Queryable) => Promise<void> = () => Promise.resolve(),
    ): Promise<Rendered> => {
      const doc = storableResource(kind.resource, body);
      return inTransaction(request.db, async (client) => {
        await write(client, request, await locked(client, request, id, ifMatch), doc);
        await then(client);
        return render(request, await reload(client, request, id, projection), projection);
      });
    },

    /** GET `/{id}`. */
    get: async (request: SourceRequest, id: string, projection: Projection): Promise<Rendered> =>
      render(request, await reload(request.db, request, id, projection), projection),

    /** GET the list and POST `.search`: one page, related resources loaded together when asked for. */
    list: async (request: SourceRequest, query: ListQuery) => {
      const { total, items } = await kind.list(
        request.db,
        request.source,
        { filter: query.filter, sort: query.sort, offset: query.startIndex - 1, limit: query.count },
        projectionWants(kind.resource, query.projection, kind.related),
      );
      return { total, resources: items.map((item) => render(request, item, query.projection).body) };
    },
  };
}
