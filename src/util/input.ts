// Reading a user-named input file (kernel specs, splat policies): only a
// regular file, never a FIFO or device that would block or never end
// (issue 26), and never more than MAX_INPUT_BYTES.

import { constants, open } from 'node:fs/promises';

/** The largest input file read (16 MiB): specs and policies are a few kB. */
export const MAX_INPUT_BYTES = 16 << 20;

/**
 * The text of `path` when it is a regular file of at most MAX_INPUT_BYTES.
 * Opened without blocking (O_NONBLOCK: a FIFO with no writer does not hang),
 * then checked with fstat on the same descriptor. Throws the OS error
 * (with its `code`) when it cannot be opened, else an Error without a code
 * whose message says what the path is ("a FIFO, not a regular file").
 */
export async function readRegularFile(path: string): Promise<string> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      const what = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a file';
      throw new Error(`${what}, not a regular file`);
    }
    if (st.size > MAX_INPUT_BYTES) throw new Error(`${st.size} bytes, more than ${MAX_INPUT_BYTES}`);
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}
