import { CONTROL_DEFAULTS, type ControlModelSummary, type ControlImage, type ControlMap, type ControlMode, type ControlUse, type StudioBridge } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import { bytesToBase64 } from './subjects.svelte';
import type { RecipeControlValues } from './recipe-fields';

/** One pen or eraser stroke on the map, in map pixels (so it is re-applied when the map is made again). */
export interface ControlStroke {
  tool: 'pen' | 'eraser';
  size: number;
  points: { x: number; y: number }[];
}

/** A blank map to draw on from scratch: black (no edge, far away in depth). */
export const BLANK_BASE = 'blank';

/** Preview requests wait this long after the last slider move, so dragging stays smooth. */
const PREVIEW_DEBOUNCE_MS = 40;

/** Paints strokes onto a 2D context: white pen, black eraser, round caps (the map is 0/255 edges or 0..255 depth). */
export function paintStrokes(context: CanvasRenderingContext2D, strokes: readonly ControlStroke[]): void {
  context.lineCap = 'round';
  context.lineJoin = 'round';
  for (const stroke of strokes) {
    const colour = stroke.tool === 'pen' ? '#ffffff' : '#000000';
    context.strokeStyle = colour;
    context.fillStyle = colour;
    context.lineWidth = stroke.size;
    const [first, ...rest] = stroke.points;
    if (!first) continue;
    if (rest.length === 0) {
      context.beginPath();
      context.arc(first.x, first.y, stroke.size / 2, 0, Math.PI * 2);
      context.fill();
      continue;
    }
    context.beginPath();
    context.moveTo(first.x, first.y);
    for (const point of rest) context.lineTo(point.x, point.y);
    context.stroke();
  }
}

/**
 * Generate's control panel: the source picture, how the map is made from it (Canny thresholds, depth,
 * as is), the strokes drawn over it (undo/redo), and the scale and step range. The map comes from main
 * (the same code the CLI runs), at the output size, so the preview is what the ControlNet gets.
 */
export class ControlState {
  enabled = $state(false);
  mode = $state<ControlMode>('canny');
  low = $state<number>(CONTROL_DEFAULTS.low);
  high = $state<number>(CONTROL_DEFAULTS.high);
  l2 = $state(false);
  scale = $state<number>(CONTROL_DEFAULTS.scale);
  start = $state<number>(CONTROL_DEFAULTS.start);
  end = $state<number>(CONTROL_DEFAULTS.end);
  /** The ControlNet a generation uses: a control model's id, or null for the model's own. */
  controlnetId = $state<number | null>(null);
  /** Draw mode: strokes over the map, pen or eraser of a size. */
  drawing = $state(false);
  tool = $state<'pen' | 'eraser'>('pen');
  brushSize = $state(3);
  strokes = $state.raw<readonly ControlStroke[]>([]);
  /** Paints the map with its strokes at the output size as PNG bytes (the panel's canvas sets it). */
  render: (() => Promise<Uint8Array>) | null = null;
  #redo = $state.raw<readonly ControlStroke[]>([]);
  #source = $state.raw<(ControlImage & { name: string }) | null>(null);
  #map = $state.raw<ControlMap | null>(null);
  #blank = $state(false);
  #busy = $state(false);
  #error = $state.raw<StudioError | null>(null);
  #request = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  readonly #bridge: StudioBridge;
  readonly #size: () => { width: number; height: number } | null;

  constructor(bridge: StudioBridge, outputSize: () => { width: number; height: number } | null) {
    this.#bridge = bridge;
    this.#size = outputSize;
  }

  get source(): (ControlImage & { name: string }) | null {
    return this.#source;
  }

  get map(): ControlMap | null {
    return this.#map;
  }

  /** Drawing on a blank map (no source picture). */
  get blank(): boolean {
    return this.#blank;
  }

  get busy(): boolean {
    return this.#busy;
  }

  get error(): StudioError | null {
    return this.#error;
  }

  get canUndo(): boolean {
    return this.strokes.length > 0;
  }

  get canRedo(): boolean {
    return this.#redo.length > 0;
  }

  /** Whether a generation now would be controlled (a map is ready). */
  get active(): boolean {
    return this.enabled && (this.#map !== null || this.#blank) && this.start < this.end;
  }

  /** A picked or dropped file becomes the source; its map is made at once. */
  async useFile(file: File): Promise<void> {
    this.#error = null;
    this.#busy = true;
    try {
      const dataBase64 = bytesToBase64(new Uint8Array(await file.arrayBuffer()));
      const source = await this.#bridge.addControlSource({ name: file.name, dataBase64 });
      this.#setSource({ ...source, name: file.name });
    } catch (error) {
      this.#error = toStudioError(error);
    } finally {
      this.#busy = false;
    }
    await this.refresh();
  }

  /** A gallery result becomes the source. */
  async useGeneration(generationId: number, name: string): Promise<void> {
    this.#error = null;
    try {
      const source = await this.#bridge.addControlSource({ generationId });
      this.#setSource({ ...source, name });
    } catch (error) {
      this.#error = toStudioError(error);
    }
    await this.refresh();
  }

  /**
   * Restores a recipe's control ("Reuse settings"): its source with the same mode and thresholds (the
   * map comes out the same), or, for a drawn map or one without a source, the map itself used as is.
   */
  async restore(values: RecipeControlValues): Promise<void> {
    this.#error = null;
    this.scale = values.scale;
    this.start = values.start;
    this.end = values.end;
    const fromSource = values.sourceId !== null && !values.drawn;
    try {
      const source = await this.#bridge.addControlSource({ storedId: fromSource ? values.sourceId! : values.mapId });
      this.#setSource({ ...source, name: fromSource ? 'Picture from the recipe' : 'Map from the recipe' });
    } catch (error) {
      this.enabled = true;
      this.#source = null;
      this.#map = null;
      this.#error = toStudioError(error);
      return;
    }
    this.mode = fromSource ? values.mode : 'image';
    if (values.low !== null) this.low = values.low;
    if (values.high !== null) this.high = values.high;
    await this.refresh();
  }

  /** Draw from scratch on a black map of the output size. */
  startBlank(): void {
    this.enabled = true;
    this.#source = null;
    this.#map = null;
    this.#blank = true;
    this.mode = 'image';
    this.drawing = true;
    this.strokes = [];
    this.#redo = [];
  }

  clearSource(): void {
    this.#source = null;
    this.#map = null;
    this.#blank = false;
    this.strokes = [];
    this.#redo = [];
    this.#error = null;
  }

  #setSource(source: ControlImage & { name: string }): void {
    this.enabled = true;
    this.#source = source;
    this.#blank = false;
    this.strokes = [];
    this.#redo = [];
  }

  /** Asks for the map again soon (a slider moved, the size changed). */
  schedule(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.refresh();
    }, PREVIEW_DEBOUNCE_MS);
  }

  /** Makes the map for the current source, mode, thresholds and output size; a newer request wins. */
  async refresh(): Promise<void> {
    const source = this.#source;
    const size = this.#size();
    if (source === null || size === null) return;
    const request = ++this.#request;
    this.#busy = true;
    try {
      const map = await this.#bridge.makeControlMap({
        sourceId: source.id,
        mode: this.mode,
        width: size.width,
        height: size.height,
        ...(this.mode === 'canny' ? { low: this.low, high: this.high, l2: this.l2 } : {}),
      });
      if (request !== this.#request) return;
      this.#map = map;
      this.#error = null;
    } catch (error) {
      if (request !== this.#request) return;
      this.#map = null;
      this.#error = toStudioError(error);
    } finally {
      if (request === this.#request) this.#busy = false;
    }
  }

  addStroke(stroke: ControlStroke): void {
    this.strokes = [...this.strokes, stroke];
    this.#redo = [];
  }

  undo(): void {
    const last = this.strokes.at(-1);
    if (!last) return;
    this.strokes = this.strokes.slice(0, -1);
    this.#redo = [...this.#redo, last];
  }

  redo(): void {
    const next = this.#redo.at(-1);
    if (!next) return;
    this.#redo = this.#redo.slice(0, -1);
    this.strokes = [...this.strokes, next];
  }

  clearStrokes(): void {
    if (this.strokes.length === 0) return;
    // Clearing is undoable stroke by stroke: the cleared strokes go onto the redo stack in order.
    this.#redo = [...this.#redo, ...[...this.strokes].reverse()];
    this.strokes = [];
  }

  /**
   * What the generation uses: the map as made, or (with strokes, or drawn from scratch) the map with
   * the strokes painted on (by `render`), stored first.
   */
  async use(): Promise<ControlUse | null> {
    if (this.#timer !== null) {
      // A slider moved a moment ago: the map for it comes first, so the image uses what the preview shows.
      clearTimeout(this.#timer);
      this.#timer = null;
      await this.refresh();
    }
    if (!this.active) return null;
    const size = this.#size();
    const map = this.#map;
    const drawn = this.strokes.length > 0 || this.#blank;
    let mapId = map?.id ?? null;
    if (drawn && size !== null) {
      const render = this.render;
      if (render === null) throw new Error('Open the Control panel to send the drawn map.');
      const saved = await this.#bridge.saveDrawnControlMap({ dataBase64: bytesToBase64(await render()), width: size.width, height: size.height });
      mapId = saved.id;
    }
    if (mapId === null) return null;
    return {
      mapId,
      scale: this.scale,
      start: this.start,
      end: this.end,
      mode: this.#blank ? 'image' : this.mode,
      ...(this.#source ? { sourceId: this.#source.id } : {}),
      ...(this.mode === 'canny' && !this.#blank ? { low: this.low, high: this.high } : {}),
      ...(drawn ? { drawn: true } : {}),
      ...(this.controlnetId !== null ? { controlnetId: this.controlnetId } : {}),
    };
  }

  /**
   * The ControlNet that suits the mode: a depth ControlNet for depth maps (when one is installed), the
   * model's own for edges when it has one; the user's pick stands while it still fits.
   */
  suitControlNet(controlNets: readonly ControlModelSummary[], modelHasOwn: boolean): void {
    const current = controlNets.find((model) => model.id === this.controlnetId) ?? null;
    const wanted = this.mode === 'depth' ? 'depth' : 'canny';
    if (current !== null && current.conditioning === wanted) return;
    const match = controlNets.find((model) => model.conditioning === wanted) ?? null;
    if (match !== null && !(wanted === 'canny' && modelHasOwn)) this.controlnetId = match.id;
    else if (modelHasOwn) this.controlnetId = null;
    else this.controlnetId = controlNets[0]?.id ?? null;
  }

  /** The map's source for the canvas: the map's data URL, or the blank marker. */
  get base(): string | null {
    if (this.#blank) return BLANK_BASE;
    return this.#map?.dataUrl ?? null;
  }
}

