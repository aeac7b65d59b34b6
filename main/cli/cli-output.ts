/** Where a CLI command writes its standard output (tests pass a collector). */
export type WriteOut = (text: string) => void;
