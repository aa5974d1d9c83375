// THE downloader: one HTTP(S) GET streamed to a file on disk, hashed on the
// way (sha256), never held in memory. A transfer that stalls (no byte for
// STALL_MS) is abandoned; a long one logs its progress every PROGRESS_MS.
// Uses Node's fetch (undici).

import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

/** No byte for this long: the transfer is abandoned, ms. */
export const STALL_MS = 60_000;
/** A progress line this often, ms. */
const PROGRESS_MS = 15_000;

/** Why a download failed, in a few words ("ECONNREFUSED", "HTTP 404 Not Found", "stalled for 60 s"). */
export class DownloadError extends Error {
  override name = 'DownloadError';
}

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

/**
 * GET `url` into `dest` (created or truncated; removed again on failure).
 * Returns the content's sha256 (hex) and size in bytes; the caller compares
 * the hash with the one it expects. Throws DownloadError (network, HTTP
 * status, stall), or the signal's reason when `signal` aborts.
 */
export async function download(url: string, dest: string, o: { log: (m: string) => void; signal?: AbortSignal; stallMs?: number }): Promise<{ sha256: string; size: number }> {
  const stall = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stall.signal]) : stall.signal;
  const stallMs = o.stallMs ?? STALL_MS;
  let timer = setTimeout(() => stall.abort(), stallMs);
  const why = (e: unknown): string => {
    if (o.signal?.aborted) throw o.signal.reason;
    if (stall.signal.aborted) return `stalled: no data for ${Math.round(stallMs / 1000)} s`;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? (e as Error).message;
  };
  try {
    let res: Response;
    try {
      res = await fetch(url, { redirect: 'follow', signal });
    } catch (e) {
      throw new DownloadError(why(e));
    }
    if (!res.ok || !res.body) throw new DownloadError(`HTTP ${res.status} ${res.statusText}`);
    const total = Number(res.headers.get('content-length')) || 0;
    const h = createHash('sha256');
    let size = 0;
    let lastLog = Date.now();
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        clearTimeout(timer);
        timer = setTimeout(() => stall.abort(), stallMs);
        h.update(chunk);
        size += chunk.length;
        if (Date.now() - lastLog > PROGRESS_MS) {
          lastLog = Date.now();
          o.log(`downloading ${url}: ${mib(size)}${total ? ` of ${mib(total)}` : ''}`);
        }
        cb(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>), meter, createWriteStream(dest), { signal });
    } catch (e) {
      throw new DownloadError(`transfer interrupted: ${why(e)}`);
    }
    return { sha256: h.digest('hex'), size };
  } catch (e) {
    await rm(dest, { force: true });
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
