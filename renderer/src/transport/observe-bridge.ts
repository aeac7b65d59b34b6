import { STUDIO_METHODS, type StudioApi, type StudioBridge, type StudioMethod } from '../contract';

export interface CallObserver {
  succeeded(): void;
  failed(error: unknown): void;
}

type AnyMethod = (...args: unknown[]) => Promise<unknown>;

/** The same bridge, telling `observer` how each call ended (the connection banner listens to this). */
export function observeBridge(bridge: StudioBridge, observer: CallObserver): StudioBridge {
  const methods = Object.fromEntries(
    STUDIO_METHODS.map((method: StudioMethod) => {
      const original = bridge[method] as AnyMethod;
      const observed: AnyMethod = async (...args) => {
        try {
          const value = await Reflect.apply(original, bridge, args);
          observer.succeeded();
          return value;
        } catch (error) {
          observer.failed(error);
          throw error;
        }
      };
      return [method, observed];
    }),
  );
  return {
    ...(methods as unknown as StudioApi),
    on: (event, listener) => bridge.on(event, listener),
  };
}
