/**
 * The Hugging Face hub's HTTP layout, as far as downloading a model needs it: the recursive file list
 * (`/api/models/{repo}/tree/{revision}`) and file URLs (`/{repo}/resolve/{revision}/{path}`). The base
 * URL is a parameter so mirrors and offline installs serving the same layout work too.
 */
import { z } from 'zod';
import { HubDownloadError, statusAdvice } from './hub-errors';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

/** A file to fetch, with what the hub says it must be. */
export interface HubFile {
  path: string;
  size: number;
  /** sha256 hex of the content, for LFS files; plain git files only carry a git blob id, so only size is checked. */
  sha256: string | null;
}

const TreeEntry = z.object({
  type: z.string(),
  path: z.string(),
  size: z.number().int().nonnegative().optional(),
  oid: z.string().optional(),
  lfs: z.object({ oid: z.string(), size: z.number().int().nonnegative() }).loose().optional(),
}).loose();

const REPO_ID = /^[\w.-]+\/[\w.-]+$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function checkRepoId(repo: string): void {
  if (!REPO_ID.test(repo) || repo.includes('..')) {
    throw new HubDownloadError('listing', `"${repo}" is not a hub repository id; expected "owner/name", e.g. Salesforce/blipdiffusion.`);
  }
}

function trimBase(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '');
}

export function treeUrl(baseUrl: string, repo: string, revision: string): string {
  return `${trimBase(baseUrl)}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
}

export function fileUrl(baseUrl: string, repo: string, revision: string, path: string): string {
  const encodedPath = path.split('/').map(encodeURIComponent).join('/');
  return `${trimBase(baseUrl)}/${repo}/resolve/${encodeURIComponent(revision)}/${encodedPath}`;
}

/**
 * A path from the server is written under the target folder, so anything that could step outside it
 * (absolute, `..`, backslashes, empty segments) is refused rather than trusted.
 */
export function isSafeRelativePath(path: string): boolean {
  if (path.length === 0 || path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

/** The next page of a paginated tree listing, from the `Link` header the hub sends on large repos. */
function nextPage(link: string | null): string | null {
  if (!link) return null;
  const match = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  return match?.[1] ?? null;
}

/** Every file of the repository at `revision`, except `.gitattributes` (git plumbing, not model data). */
export async function listRepoFiles(baseUrl: string, repo: string, revision: string, signal?: AbortSignal): Promise<HubFile[]> {
  checkRepoId(repo);
  const files: HubFile[] = [];
  let url: string | null = treeUrl(baseUrl, repo, revision);
  while (url) {
    let response: Response;
    try {
      response = await fetch(url, { signal, headers: { accept: 'application/json' } });
    } catch (error) {
      if (signal?.aborted) throw new HubDownloadError('paused', `Download of ${repo} paused before it started; start it again to continue.`);
      throw new HubDownloadError('listing', `Could not reach ${trimBase(baseUrl)} to list the files of ${repo}: ${describeError(error)}. Check the connection or the mirror address.`, undefined, undefined, { cause: error });
    }
    if (!response.ok) {
      throw new HubDownloadError('listing', `Listing the files of ${repo}@${revision} failed with HTTP ${response.status}: ${statusAdvice(response.status)}.`, undefined, response.status);
    }
    const body: unknown = await response.json().catch(() => null);
    if (signal?.aborted) throw new HubDownloadError('paused', `Download of ${repo} paused before it started; start it again to continue.`);
    const parsed = z.array(TreeEntry).safeParse(body);
    if (!parsed.success) {
      throw new HubDownloadError('listing', `The server's file list for ${repo} is not in the hub's format; check that ${trimBase(baseUrl)} is a hub or a mirror of it.`);
    }
    for (const entry of parsed.data) {
      if (entry.type !== 'file' || entry.path === '.gitattributes') continue;
      if (!isSafeRelativePath(entry.path)) {
        throw new HubDownloadError('bad-entry', `The file list of ${repo} names "${entry.path}", which would be written outside the model folder; refusing to download from this server.`, entry.path);
      }
      const size = entry.lfs?.size ?? entry.size;
      if (size === undefined) throw new HubDownloadError('listing', `The file list of ${repo} gives no size for ${entry.path}.`, entry.path);
      const sha = entry.lfs?.oid.toLowerCase() ?? null;
      files.push({ path: entry.path, size, sha256: sha && SHA256_HEX.test(sha) ? sha : null });
    }
    url = nextPage(response.headers.get('link'));
    if (url && !/^https?:/.test(url)) url = new URL(url, trimBase(baseUrl)).toString();
  }
  return files;
}

/** A short reason from a fetch failure: undici hides the socket error in `cause`. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}
