/**
 * The Edit view's mask: what the user brushed (brush/eraser strokes with size and hardness), cleared,
 * inverted or had proposed from a word, as a list of operations replayed onto a canvas, so undo/redo
 * is exact and cheap. The mask is white where the image is repainted. Also the view's zoom and pan.
 */

export type MaskTool = 'brush' | 'eraser';

export interface MaskStroke {
  kind: 'stroke';
  tool: MaskTool;
  /** Diameter in image pixels. */
  size: number;
  /** 0 … 1: 1 is a hard edge, 0 fades from the centre. */
  hardness: number;
  points: { x: number; y: number }[];
}

/** A whole-mask operation: clear, invert, or replace it by a proposed mask (a PNG data URL at image size). */
export type MaskOp = MaskStroke | { kind: 'clear' } | { kind: 'invert' } | { kind: 'fill'; image: CanvasImageSource };

export const BRUSH_LIMITS = Object.freeze({ min: 1, max: 256 });
export const ZOOM_LIMITS = Object.freeze({ min: 0.1, max: 16 });

/** Stamps one brush dab: a radial gradient from full at the hard core to nothing at the rim. */
function dab(context: CanvasRenderingContext2D, x: number, y: number, size: number, hardness: number, colour: string): void {
  const radius = size / 2;
  if (hardness >= 1) {
    context.fillStyle = colour;
    context.beginPath();
    context.arc(x, y, radius, 0, Math.PI * 2);
    context.fill();
    return;
  }
  const gradient = context.createRadialGradient(x, y, radius * hardness, x, y, radius);
  gradient.addColorStop(0, colour);
  gradient.addColorStop(1, colour === '#ffffff' ? 'rgba(255,255,255,0)' : 'rgba(0,0,0,0)');
  context.fillStyle = gradient;
  context.beginPath();
  context.arc(x, y, radius, 0, Math.PI * 2);
  context.fill();
}

const strokeColour = (stroke: MaskStroke): string => (stroke.tool === 'brush' ? '#ffffff' : '#000000');

/** Paints the dabs from `from` (exclusive) to `to` (inclusive), an eighth of the brush apart, so a soft brush stays even. */
export function paintMaskSegment(context: CanvasRenderingContext2D, stroke: MaskStroke, from: { x: number; y: number }, to: { x: number; y: number }): void {
  const spacing = Math.max(0.5, stroke.size / 8);
  const count = Math.max(1, Math.ceil(Math.hypot(to.x - from.x, to.y - from.y) / spacing));
  for (let i = 1; i <= count; i++) {
    const t = i / count;
    dab(context, from.x + (to.x - from.x) * t, from.y + (to.y - from.y) * t, stroke.size, stroke.hardness, strokeColour(stroke));
  }
}

/** Paints a whole stroke (the eraser paints black over white: plain source-over keeps it exact). */
export function paintMaskStroke(context: CanvasRenderingContext2D, stroke: MaskStroke): void {
  const [first, ...rest] = stroke.points;
  if (!first) return;
  dab(context, first.x, first.y, stroke.size, stroke.hardness, strokeColour(stroke));
  let previous = first;
  for (const point of rest) {
    paintMaskSegment(context, stroke, previous, point);
    previous = point;
  }
}

/** Replays the operations onto a black canvas of the image's size. */
export function renderMask(context: CanvasRenderingContext2D, width: number, height: number, ops: readonly MaskOp[]): void {
  context.globalCompositeOperation = 'source-over';
  context.fillStyle = '#000000';
  context.fillRect(0, 0, width, height);
  for (const op of ops) {
    if (op.kind === 'stroke') paintMaskStroke(context, op);
    else if (op.kind === 'clear') {
      context.fillStyle = '#000000';
      context.fillRect(0, 0, width, height);
    } else if (op.kind === 'fill') {
      context.fillStyle = '#000000';
      context.fillRect(0, 0, width, height);
      context.drawImage(op.image, 0, 0, width, height);
    } else {
      context.globalCompositeOperation = 'difference';
      context.fillStyle = '#ffffff';
      context.fillRect(0, 0, width, height);
      context.globalCompositeOperation = 'source-over';
    }
  }
}

export class MaskEditor {
  tool = $state<MaskTool>('brush');
  size = $state(32);
  hardness = $state(0.8);
  /** Show the mask over the image (the accent colour at this opacity). */
  overlay = $state(true);
  zoom = $state(1);
  panX = $state(0);
  panY = $state(0);
  #ops = $state.raw<readonly MaskOp[]>([]);
  #redo = $state.raw<readonly MaskOp[]>([]);

  get ops(): readonly MaskOp[] {
    return this.#ops;
  }

  get canUndo(): boolean {
    return this.#ops.length > 0;
  }

  get canRedo(): boolean {
    return this.#redo.length > 0;
  }

  /** Whether anything is painted (a mask made only of erasing or clearing paints nothing). */
  get painted(): boolean {
    return this.#ops.some((op) => (op.kind === 'stroke' && op.tool === 'brush') || op.kind === 'invert' || op.kind === 'fill');
  }

  push(op: MaskOp): void {
    this.#ops = [...this.#ops, op];
    this.#redo = [];
  }

  undo(): void {
    const last = this.#ops.at(-1);
    if (!last) return;
    this.#ops = this.#ops.slice(0, -1);
    this.#redo = [...this.#redo, last];
  }

  redo(): void {
    const next = this.#redo.at(-1);
    if (!next) return;
    this.#redo = this.#redo.slice(0, -1);
    this.#ops = [...this.#ops, next];
  }

  clear(): void {
    if (this.#ops.length > 0) this.push({ kind: 'clear' });
  }

  invert(): void {
    this.push({ kind: 'invert' });
  }

  /** A new image: an empty mask, nothing to undo. */
  reset(): void {
    this.#ops = [];
    this.#redo = [];
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
  }

  /** [ and ]: the brush a tenth smaller or larger (at least one pixel). */
  resize(direction: -1 | 1): void {
    const step = Math.max(1, Math.round(this.size / 10));
    this.size = Math.min(BRUSH_LIMITS.max, Math.max(BRUSH_LIMITS.min, this.size + direction * step));
  }

  /** Zooms by `factor` keeping the view point (vx, vy) (relative to the view's centre) still. */
  zoomAt(factor: number, vx: number, vy: number): void {
    const next = Math.min(ZOOM_LIMITS.max, Math.max(ZOOM_LIMITS.min, this.zoom * factor));
    const applied = next / this.zoom;
    this.panX = vx - (vx - this.panX) * applied;
    this.panY = vy - (vy - this.panY) * applied;
    this.zoom = next;
  }

  /** Fits an image of (width, height) into a view of (viewWidth, viewHeight), centred. */
  fit(width: number, height: number, viewWidth: number, viewHeight: number): void {
    if (width <= 0 || height <= 0 || viewWidth <= 0 || viewHeight <= 0) return;
    this.zoom = Math.min(ZOOM_LIMITS.max, Math.max(ZOOM_LIMITS.min, Math.min(viewWidth / width, viewHeight / height)));
    this.panX = 0;
    this.panY = 0;
  }
}
