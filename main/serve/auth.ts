/**
 * Serve mode's guard: a random per-run token, accepted as a cookie (set once when the user opens the
 * printed URL) or as an `Authorization: Bearer` header (scripts), and Host/Origin checks so that other
 * web pages in the user's browser cannot drive the API (DNS rebinding, cross-site requests).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const TOKEN_COOKIE = 'blip_studio_token';

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

function sameSecret(candidate: string, token: string): boolean {
  const a = Buffer.from(candidate);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieValue(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return null;
}

/** The token a request presents (bearer header first, then cookie), or null. */
export function presentedToken(request: IncomingMessage): string | null {
  const authorization = request.headers.authorization;
  if (authorization?.startsWith('Bearer ')) return authorization.slice('Bearer '.length).trim();
  return cookieValue(request.headers.cookie, TOKEN_COOKIE);
}

export function isAuthorized(request: IncomingMessage, token: string): boolean {
  const candidate = presentedToken(request);
  return candidate !== null && sameSecret(candidate, token);
}

export function tokenMatches(candidate: string | null, token: string): boolean {
  return candidate !== null && sameSecret(candidate, token);
}

/** Only loopback host names at our port: a rebound DNS name never matches. */
export function isAllowedHost(hostHeader: string | undefined, port: number): boolean {
  return hostHeader === `127.0.0.1:${port}` || hostHeader === `localhost:${port}`;
}

/** Browsers send Origin on cross-origin and state-changing requests; when present it must be ours. */
export function isAllowedOrigin(originHeader: string | undefined, port: number): boolean {
  if (originHeader === undefined) return true;
  return originHeader === `http://127.0.0.1:${port}` || originHeader === `http://localhost:${port}`;
}

export function tokenCookie(token: string): string {
  return `${TOKEN_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict`;
}
