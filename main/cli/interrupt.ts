/**
 * Ctrl+C for a CLI run: the first one aborts the signal (the engine stops within a step and nothing is
 * written), a second one quits at once. `stop()` removes the handler when the run ends.
 */
export function interruptOnCtrlC(message: string): { signal: AbortSignal; stop: () => void } {
  const controller = new AbortController();
  const onInterrupt = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\n${message}\n`);
    controller.abort();
  };
  process.on('SIGINT', onInterrupt);
  return { signal: controller.signal, stop: () => process.off('SIGINT', onInterrupt) };
}
