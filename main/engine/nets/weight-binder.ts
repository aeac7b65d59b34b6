/**
 * Binds a network's parameter requests to a catalog while its graph is built: each request becomes an
 * external initializer pointing into the weight files (with a Cast to float32 for F16/BF16/F64 data),
 * or, when the files lack it or disagree, a placeholder so the build goes on and `finish` can report
 * every missing, unused and mis-shaped tensor in one error.
 */
import type { GraphBuilder, Value } from '../graph/builder';
import type { Shape } from '../graph/shapes';
import { checkParameters, isCleanReport, WeightMismatchError } from './implied-parameters';
import { catalogListing, isSafeRelativeLocation, tensorMismatch, type TensorRequest, type WeightCatalog } from './weight-catalog';

const STORED_FLOAT_TYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64' } as const;

export class WeightBinder {
  readonly #builder: GraphBuilder;
  readonly #catalog: WeightCatalog;
  readonly #component: string;
  readonly #requests = new Map<string, TensorRequest>();

  /** `component` names the weights in errors, e.g. 'qformer'. */
  constructor(builder: GraphBuilder, catalog: WeightCatalog, component: string) {
    this.#builder = builder;
    this.#catalog = catalog;
    this.#component = component;
  }

  get requests(): readonly TensorRequest[] {
    return [...this.#requests.values()];
  }

  /** A float parameter of the given shape, as a float32 value of the graph. */
  parameter(name: string, shape: Shape): Value {
    const request = this.#request({ name, shape: [...shape], kind: 'parameter', optional: false });
    const entry = this.#catalog.lookup(name, request);
    if (!entry || tensorMismatch(request, { name, ...entry }) !== null) return this.#builder.unbound(name, 'float32', shape);
    if (!isSafeRelativeLocation(entry.file)) {
      throw new Error(`${this.#component}: weight '${name}' lies in '${entry.file}', which is not a relative path inside the model folder`);
    }
    const stored = STORED_FLOAT_TYPE[entry.dtype as keyof typeof STORED_FLOAT_TYPE];
    const value = this.#builder.external(name, stored, shape, { file: entry.file, offset: entry.offset, byteLength: entry.byteLength });
    return stored === 'float32' ? value : this.#builder.cast(value, 'float32');
  }

  /**
   * Declares a persistent buffer (e.g. `position_ids`) that the files may hold and the graph recomputes
   * instead: it counts as consumed, and is checked for dtype and shape when present.
   */
  buffer(name: string, shape: Shape): void {
    const request = this.#request({ name, shape: [...shape], kind: 'buffer', optional: true });
    this.#catalog.lookup(name, request);
  }

  /** Throws one error listing every missing, unused and mis-shaped tensor, if there is any. */
  finish(): void {
    const report = checkParameters(this.requests, catalogListing(this.#catalog));
    if (!isCleanReport(report)) throw new WeightMismatchError(this.#component, report);
  }

  #request(request: TensorRequest): TensorRequest {
    if (this.#requests.has(request.name)) throw new Error(`${this.#component}: '${request.name}' is requested twice; every weight is consumed exactly once`);
    this.#requests.set(request.name, request);
    return request;
  }
}
