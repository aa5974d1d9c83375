// Commands lockstep writes for a person to paste into a POSIX shell (the
// re-run command of a cell, in results.json, report.html, junit.xml and bug
// reports): every word quoted by shell-quote (a maintained package), so a
// path or flag value with blanks, quotes or `$(...)` stays one literal word.

import { quote } from 'shell-quote';

/** `words` as one POSIX shell command line; a plain word (letters, digits, -_./=:,+@%) is left bare. */
export function shellQuote(words: readonly string[]): string {
  return words.map((w) => (/^[A-Za-z0-9_\-./=:,+@%]+$/.test(w) ? w : quote([w]))).join(' ');
}
