// Where a file of a published results directory lives on the web: the
// --artifact-base-url of `lockstep export kcidb` (https only) and a log
// path lockstep recorded relative to the results directory. Pure.

import { ConfigError } from '../util/errors.ts';

/**
 * The --artifact-base-url value, checked: an https URL without credentials,
 * query or fragment; returned with one trailing slash so paths resolve under
 * it. Throws ConfigError naming the flag otherwise (KCIDB readers fetch these
 * URLs; http and file are refused).
 */
export function httpsBase(u: string, flag = '--artifact-base-url'): string {
  let url: URL | undefined;
  try { url = new URL(u); } catch { /* not a URL */ }
  const fix = 'give the https URL the results directory is published at, e.g. https://ci.example.org/runs/42/';
  if (!url || url.protocol !== 'https:') throw new ConfigError('command line', flag, `${JSON.stringify(u)} is not an https URL`, fix);
  if (url.username || url.password || url.search || url.hash) throw new ConfigError('command line', flag, `${JSON.stringify(u)} carries credentials, a query or a fragment`, fix);
  return url.href.replace(/\/*$/, '/');
}

/**
 * The URL of `rel` (a path relative to the results directory, '/'-separated,
 * as results.json records console_log/results_log) under `base` (from
 * httpsBase), each segment percent-encoded; undefined for an absolute path,
 * an empty one or one with '.'/'..' segments (it would not be under base).
 */
export function artifactUrl(base: string, rel: string | null | undefined): string | undefined {
  if (!rel || rel.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(rel)) return undefined;
  const parts = rel.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\\') || p.includes('\0'))) return undefined;
  return base + parts.map(encodeURIComponent).join('/');
}
