import type { ControlImage, GenerationSummary, StudioBridge } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import { MaskEditor } from './mask-editor.svelte';
import { bytesToBase64 } from './subjects.svelte';

/** The picture open in Edit: a gallery result or a photo the user picked or dropped (stored content-addressed). */
export interface EditSource {
  /** Data-folder-relative path of the picture. */
  path: string;
  width: number;
  height: number;
  name: string;
  /** The gallery result it is, when it is one. */
  generationId: number | null;
  /** The stored picture's content hash, once stored (a dropped photo is stored when opened). */
  storedId: string | null;
}

/**
 * The Edit view: the open picture and its mask. Opening another picture starts a fresh mask (with
 * nothing to undo); the mask itself lives in `MaskEditor`.
 */
export class EditState {
  readonly mask = new MaskEditor();
  #source = $state.raw<EditSource | null>(null);
  #opening = $state(false);
  #error = $state.raw<StudioError | null>(null);
  readonly #bridge: StudioBridge;

  constructor(bridge: StudioBridge) {
    this.#bridge = bridge;
  }

  get source(): EditSource | null {
    return this.#source;
  }

  get opening(): boolean {
    return this.#opening;
  }

  get error(): StudioError | null {
    return this.#error;
  }

  openGeneration(generation: GenerationSummary): void {
    if (this.#source?.generationId === generation.id) return;
    this.#source = { path: generation.imagePath, width: generation.width, height: generation.height, name: generation.prompt, generationId: generation.id, storedId: null };
    this.mask.reset();
    this.#error = null;
  }

  /** A picked or dropped photo: stored in the data folder (decoded, EXIF applied), then opened. */
  async openFile(file: File): Promise<void> {
    this.#opening = true;
    this.#error = null;
    try {
      const stored: ControlImage = await this.#bridge.addControlSource({ name: file.name, dataBase64: bytesToBase64(new Uint8Array(await file.arrayBuffer())) });
      this.#source = { path: stored.path, width: stored.width, height: stored.height, name: file.name, generationId: null, storedId: stored.id };
      this.mask.reset();
    } catch (error) {
      this.#error = toStudioError(error);
    } finally {
      this.#opening = false;
    }
  }

  close(): void {
    this.#source = null;
    this.mask.reset();
  }
}
