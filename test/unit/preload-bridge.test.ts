import { describe, expect, it, vi } from 'vitest';
import { STUDIO_METHODS, type StudioCallOutcome, type StudioMethod } from '../../main/api/contract';
import { createStudioBridge, type BridgeTransport } from '../../preload/bridge';

function fakeTransport(reply: (method: StudioMethod, args: unknown[]) => unknown) {
  let emit: (name: unknown, payload: unknown) => void = () => undefined;
  const calls: Array<{ method: StudioMethod; args: unknown[] }> = [];
  const transport: BridgeTransport = {
    invoke: async (method, args) => {
      calls.push({ method, args });
      return reply(method, args);
    },
    subscribe: (handler) => {
      emit = handler;
    },
  };
  return { transport, calls, emit: (name: unknown, payload: unknown) => emit(name, payload) };
}

describe('preload bridge', () => {
  it('has exactly one function per API method, plus on', () => {
    const bridge = createStudioBridge(fakeTransport(() => ({ ok: true, value: null })).transport);
    expect(Object.keys(bridge).sort()).toEqual([...STUDIO_METHODS, 'on'].sort());
    for (const key of Object.keys(bridge)) expect(typeof (bridge as unknown as Record<string, unknown>)[key]).toBe('function');
  });

  it('sends the method name with its arguments and returns the value', async () => {
    const fake = fakeTransport(() => ({ ok: true, value: [{ id: 1 }] }) satisfies StudioCallOutcome);
    const bridge = createStudioBridge(fake.transport);
    await expect(bridge.listSubjects({ search: 'dog' })).resolves.toEqual([{ id: 1 }]);
    expect(fake.calls).toEqual([{ method: 'listSubjects', args: [{ search: 'dog' }] }]);
  });

  it('rejects a failed call with a plain { code, message } payload, which survives contextBridge', async () => {
    const failure: StudioCallOutcome = { ok: false, error: { code: 'not-found', message: 'No such job.' } };
    const bridge = createStudioBridge(fakeTransport(() => failure).transport);
    const error: unknown = await bridge.cancelJob({ id: 'x' }).catch((e: unknown) => e);
    expect(error).toStrictEqual({ code: 'not-found', message: 'No such job.' });
    expect(Object.getPrototypeOf(error)).toBe(Object.prototype);
  });

  it('treats a malformed reply as an internal error', async () => {
    const bridge = createStudioBridge(fakeTransport(() => ({ value: 1 })).transport);
    await expect(bridge.getSettings()).rejects.toMatchObject({ code: 'internal', message: expect.stringContaining('getSettings') });
  });

  it('delivers only the named event, payload only, until unsubscribed', () => {
    const fake = fakeTransport(() => ({ ok: true, value: null }));
    const bridge = createStudioBridge(fake.transport);
    const listener = vi.fn();
    const unsubscribe = bridge.on('libraryChanged', listener);
    fake.emit('libraryChanged', { what: 'subjects' });
    fake.emit('settingsChanged', { theme: 'dark' });
    fake.emit('notAnEvent', 1);
    expect(listener.mock.calls).toEqual([[{ what: 'subjects' }]]);
    unsubscribe();
    fake.emit('libraryChanged', { what: 'photos' });
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it('refuses unknown events and non-function listeners', () => {
    const bridge = createStudioBridge(fakeTransport(() => null).transport);
    expect(() => bridge.on('nope' as never, () => undefined)).toThrow(TypeError);
    expect(() => bridge.on('jobChanged', 'x' as never)).toThrow(TypeError);
  });
});
