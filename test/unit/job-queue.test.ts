import { describe, expect, it } from 'vitest';
import type { JobSummary } from '../../main/api/contract';
import { JobQueue, throwIfCancelled, type JobContext } from '../../main/jobs/job-queue';

/** A job whose steps advance only when the test says so, to observe the queue between steps. */
function steppedJob(totalSteps: number) {
  let release: () => void = () => undefined;
  const gate = () => new Promise<void>((resolve) => (release = resolve));
  const spec = {
    kind: 'test',
    label: 'stepped',
    totalSteps,
    run: async (context: JobContext) => {
      for (let step = 1; step <= totalSteps; step++) {
        await gate();
        throwIfCancelled(context.signal);
        context.progress(step, totalSteps, `step ${step}`);
      }
      return 'finished';
    },
  };
  return { spec, next: () => release() };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('JobQueue', () => {
  it('runs jobs one at a time in order and reports progress with an ETA', async () => {
    const events: JobSummary[] = [];
    const queue = new JobQueue((job) => events.push(job));
    const first = steppedJob(2);
    const second = steppedJob(1);
    const a = queue.submit(first.spec);
    const b = queue.submit(second.spec);
    await tick();
    expect(queue.get(a.id)?.state).toBe('running');
    expect(queue.get(b.id)?.state).toBe('queued');

    first.next();
    await tick();
    expect(queue.get(a.id)).toMatchObject({ step: 1, totalSteps: 2, message: 'step 1' });
    expect(queue.get(a.id)?.etaMs).toEqual(expect.any(Number));
    first.next();
    await tick();
    expect(queue.get(a.id)).toMatchObject({ state: 'done', message: 'finished', step: 2, etaMs: null });
    expect(queue.get(b.id)?.state).toBe('running');
    second.next();
    await queue.whenIdle();
    expect(queue.get(b.id)?.state).toBe('done');

    const statesOfA = events.filter((e) => e.id === a.id).map((e) => e.state);
    expect(statesOfA[0]).toBe('queued');
    expect(statesOfA.at(-1)).toBe('done');
    expect(events.findIndex((e) => e.id === b.id && e.state === 'running')).toBeGreaterThan(events.findIndex((e) => e.id === a.id && e.state === 'done'));
  });

  it('cancels a running job between steps and a queued job before it starts', async () => {
    const queue = new JobQueue(() => undefined);
    const running = steppedJob(5);
    const waiting = steppedJob(1);
    const a = queue.submit(running.spec);
    const b = queue.submit(waiting.spec);
    await tick();
    running.next();
    await tick();
    expect(queue.cancel(b.id)).toBe(true);
    expect(queue.get(b.id)?.state).toBe('cancelled');
    expect(queue.cancel(a.id)).toBe(true);
    running.next();
    await queue.whenIdle();
    expect(queue.get(a.id)).toMatchObject({ state: 'cancelled', step: 1 });
    expect(queue.cancel(a.id)).toBe(false);
    expect(queue.cancel('unknown')).toBe(false);
  });

  it('reports a failing job with its error message and goes on with the next', async () => {
    const queue = new JobQueue(() => undefined);
    const failing = queue.submit({ kind: 'test', label: 'fails', totalSteps: 1, run: async () => Promise.reject(new Error('disk full')) });
    const next = queue.submit({ kind: 'test', label: 'ok', totalSteps: 1, run: async () => 'ok' });
    await queue.whenIdle();
    expect(queue.get(failing.id)).toMatchObject({ state: 'failed', message: 'disk full' });
    expect(queue.get(next.id)).toMatchObject({ state: 'done', message: 'ok' });
  });
});

describe('JobQueue previews and results', () => {
  it('carries a live preview and the result id, and gives a second phase its own ETA', async () => {
    const events: JobSummary[] = [];
    const queue = new JobQueue((job) => events.push(job));
    const job = queue.submit({
      kind: 'generation',
      label: 'with preview',
      totalSteps: 4,
      run: async (context) => {
        await tick(); // `job` is assigned once submit returns
        context.progress(1, 2, 'phase one');
        context.progress(0, 4, 'phase two');
        expect(queue.get(job.id)?.etaMs).toBeNull();
        context.progress(1, 4, 'step 1', 'data:image/png;base64,AAAA');
        context.preview('data:image/png;base64,BBBB');
        context.setResult(7);
        return 'saved';
      },
    });
    expect(job).toMatchObject({ preview: null, resultId: null });
    await queue.whenIdle();
    expect(events.find((e) => e.message === 'step 1')?.preview).toBe('data:image/png;base64,AAAA');
    expect(queue.get(job.id)).toMatchObject({ state: 'done', preview: 'data:image/png;base64,BBBB', resultId: 7 });
  });

  it('counts a job that recorded its result as done even when cancelled just after', async () => {
    const queue = new JobQueue(() => undefined);
    const job = queue.submit({
      kind: 'generation',
      label: 'late cancel',
      totalSteps: 1,
      run: async (context) => {
        await tick();
        context.setResult(3);
        queue.cancel(job.id);
        return 'saved';
      },
    });
    await queue.whenIdle();
    expect(queue.get(job.id)).toMatchObject({ state: 'done', resultId: 3 });
  });
});
