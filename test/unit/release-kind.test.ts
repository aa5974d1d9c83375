// The release column (issue 24): a tree built here without patches is a real
// release, a patched one stands in for a logic. Pure.

import t from 'tap';
import { releaseKind } from '../../src/matrix/provenance.ts';
import { releaseText } from '../../src/results/table.ts';
import type { KernelRecord } from '../../src/results/schema.ts';

t.test('releaseKind: source with no patches is real, with patches a stand-in', (t) => {
  t.equal(releaseKind({ kind: 'source', meta: { source: 'linux-5.4.tar.xz', patches: [] } }), 'real', 'pristine v5.4.0 tree built by lockstep');
  t.equal(releaseKind({ kind: 'source', meta: { patches: [{ file: 'remmap-charge-v4.patch', sha256: 'a'.repeat(64) }] } }), 'stand-in');
  t.equal(releaseKind({ kind: 'source', meta: {} }), 'stand-in', 'no patches field: not known, not called real');
  t.equal(releaseKind({ kind: 'source', meta: { patches: 'x' } }), 'stand-in', 'a patches field of the wrong type is not read as none');
  t.equal(releaseKind({ kind: 'debian-image', meta: {} }), 'real');
  t.equal(releaseKind({ kind: 'host', meta: {} }), 'real');
  t.equal(releaseKind({ kind: 'image', meta: {} }), 'image');
  t.end();
});

t.test('releaseText: the recorded kind wins; records without one read the provenance line', (t) => {
  const rec = (over: Partial<KernelRecord>): KernelRecord => ({ id: 'v5.4', kind: 'source', version: '5.4.0', expected_logic: 'V1a/shared', expect_reason: '', artifact_sha256: null, ...over });
  t.equal(releaseText(rec({ release_kind: 'real' })), 'real');
  t.equal(releaseText(rec({ release_kind: 'stand-in', source: 'linux-5.4.tar.xz + 0 patch(es), artifact abc' })), 'stand-in', 'a recorded kind is kept');
  t.equal(releaseText(rec({ source: 'linux-5.4.tar.xz + 0 patch(es), artifact abc' })), 'real');
  t.equal(releaseText(rec({ source: 'linux-source-6.1 + 1 patch(es), artifact abc' })), 'stand-in');
  t.equal(releaseText(rec({ source: 'linux-source-6.1 + 10 patch(es), artifact abc' })), 'stand-in');
  t.equal(releaseText(rec({})), 'stand-in');
  t.end();
});
