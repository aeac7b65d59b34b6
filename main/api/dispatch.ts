/**
 * The single entry point through which untrusted callers (Electron IPC, serve-mode HTTP) reach the API:
 * it checks the method name against the contract, validates the arguments with their schema, calls the
 * implementation and wraps the result or error in a `StudioCallOutcome`. It never throws.
 */
import { z } from 'zod';
import { STUDIO_METHODS, type StudioApi, type StudioCallOutcome, type StudioErrorPayload, type StudioMethod } from './contract';
import { argumentSchemas } from './schemas';
import { StudioError } from './studio-error';

const KNOWN_METHODS: ReadonlySet<string> = new Set(STUDIO_METHODS);

function isStudioMethod(method: unknown): method is StudioMethod {
  return typeof method === 'string' && KNOWN_METHODS.has(method);
}

function describeIssues(method: string, error: z.ZodError): string {
  const details = error.issues.map((issue) => {
    const where = issue.path.length > 0 ? issue.path.join('.') : 'arguments';
    return `${where}: ${issue.message}`;
  });
  return `Invalid request to ${method}: ${details.join('; ')}`;
}

function toErrorPayload(error: unknown): StudioErrorPayload {
  if (error instanceof StudioError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'internal', message: message || 'Unexpected error' };
}

export async function dispatchCall(api: StudioApi, method: unknown, args: unknown): Promise<StudioCallOutcome> {
  if (!isStudioMethod(method)) {
    const shown = typeof method === 'string' ? JSON.stringify(method.slice(0, 64)) : typeof method;
    return { ok: false, error: { code: 'unknown-method', message: `Unknown API method ${shown}.` } };
  }
  const parsed = argumentSchemas[method].safeParse(args ?? []);
  if (!parsed.success) {
    return { ok: false, error: { code: 'invalid-request', message: describeIssues(method, parsed.error) } };
  }
  try {
    const implementation = api[method] as (...a: unknown[]) => Promise<unknown>;
    const value = await implementation.apply(api, parsed.data as unknown[]);
    return { ok: true, value: value ?? null };
  } catch (error) {
    return { ok: false, error: toErrorPayload(error) };
  }
}
