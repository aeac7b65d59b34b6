import type { IconName } from '../components/icons/icon-paths';

export type ViewId = 'subjects' | 'generate' | 'edit' | 'gallery' | 'settings';

export interface ViewEntry {
  readonly id: ViewId;
  readonly label: string;
  readonly icon: IconName;
  /** One line under the view title. */
  readonly summary: string;
  /** The digit of its Ctrl/Cmd shortcut. */
  readonly key: string;
}

/** The app's views, in sidebar order. The order also fixes the Ctrl/Cmd+1…5 shortcuts. */
export const VIEWS: readonly ViewEntry[] = [
  {
    id: 'subjects',
    label: 'Subjects',
    icon: 'subjects',
    summary: 'The pets, products and characters the model learns from your photos.',
    key: '1',
  },
  {
    id: 'generate',
    label: 'Generate',
    icon: 'generate',
    summary: 'Put a subject into a new scene from a prompt, optionally steered by an edge or depth map.',
    key: '2',
  },
  {
    id: 'edit',
    label: 'Edit',
    icon: 'edit',
    summary: 'Brush over part of an image and repaint only that region.',
    key: '3',
  },
  {
    id: 'gallery',
    label: 'Gallery',
    icon: 'gallery',
    summary: 'Everything you made, each with the full recipe to make it again.',
    key: '4',
  },
  {
    id: 'settings',
    label: 'Models & Settings',
    icon: 'settings',
    summary: 'Models, hardware backends, the data folder and your defaults.',
    key: '5',
  },
];

export const DEFAULT_VIEW: ViewId = 'subjects';

export function isViewId(value: string): value is ViewId {
  return VIEWS.some((view) => view.id === value);
}

export function viewEntry(id: ViewId): ViewEntry {
  const entry = VIEWS.find((view) => view.id === id);
  if (entry === undefined) throw new Error(`Unknown view: ${id}`);
  return entry;
}
