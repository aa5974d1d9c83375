// The compatibility table (src/report/compat.ts) and the pinned specs
// `kernels news --specs` writes (src/kernels/news.ts): rows from a real
// published run (results/results.json), merging that only grows, the
// checks on read, the renderings, and specs that parse and dedupe.

import { readFileSync } from 'node:fs';
import t from 'tap';
import { classifyKernel } from '../../src/diff/evidence.ts';
import { type NewsRow, newsSpecId, specsOfNews } from '../../src/kernels/news.ts';
import { ID_RE, parseSpec } from '../../src/kernels/spec.ts';
import { COMPAT_SCHEMA, type CompatRow, compareCompatRows, compatRowsOfRun, type CompatRunLike, mergeCompat, parseCompat, renderCompatHtml, renderCompatMarkdown } from '../../src/report/compat.ts';

const run = JSON.parse(readFileSync(new URL('../../results/results.json', import.meta.url), 'utf8')) as CompatRunLike;

t.test('rows of a run: one per Debian kernel, classified by the one classifier, cells counted', (t) => {
  const rows = compatRowsOfRun(run);
  const debian = run.kernels.filter((k) => k.resolution);
  t.ok(debian.length > 0, 'the published run has Debian kernels');
  t.equal(rows.length, debian.length, 'hosts, builds and images give no row');
  for (const r of rows) {
    const k = run.kernels.find((x) => x.id === r.run_kernel)!;
    t.equal(r.package, k.resolution!.package);
    t.equal(r.package_version, k.resolution!.package_version);
    t.equal(r.classified, classifyKernel(run, k.id).label, `${k.id}: classifyKernel's label`);
    t.equal(Object.values(r.cells).reduce((a, b) => a + b, 0), run.cells.filter((c) => c.kernel === k.id).length, `${k.id}: every cell counted once`);
    t.equal(r.measured, run.started_at.slice(0, 10));
    t.match(r.flavour, /^(cloud-amd64|cloud-arm64|arm64(-16k)?)$/);
  }
  t.end();
});

t.test('consistent: true when the classified logics include the expected one, null when the counter is open', (t) => {
  const base = { ...run, kernels: run.kernels.filter((k) => k.id === 'debian-6.1.190') };
  const [ok] = compatRowsOfRun(base);
  t.equal(ok!.consistent, true);
  const [wrong] = compatRowsOfRun({ ...base, kernels: base.kernels.map((k) => ({ ...k, expected_logic: 'V4/perf' })) });
  t.equal(wrong!.consistent, false, 'a V3 kernel expected to be V4 is not consistent');
  const [open] = compatRowsOfRun({ ...base, kernels: base.kernels.map((k) => ({ ...k, expected_logic: 'V4/unknown' })) });
  t.equal(open!.consistent, null);
  const [failing] = compatRowsOfRun({ ...base, cells: base.cells.map((c) => (c.kernel === 'debian-6.1.190' && c.scenario === 'remmap' ? { ...c, verdict: 'MISMATCH' } : c)) });
  t.same(failing!.failing, ['remmap']);
  t.end();
});

const row = (kernel: string, version: string, over: Partial<CompatRow> = {}): CompatRow => ({
  kernel, suite: 'trixie-backports', package: `linux-binary-unsigned-${kernel}+deb13-cloud-amd64`, flavour: 'cloud-amd64', package_version: version,
  expected: 'V4/shared', classified: 'V4/shared', consistent: true, cells: { MATCH: 27 }, failing: [], measured: '2026-12-07', run_kernel: 'k', ...over,
});

t.test('merge: adds new package versions, replaces one measured again, never drops a row; newest kernel first', (t) => {
  const empty = { schema: COMPAT_SCHEMA, rows: [] as CompatRow[] } as const;
  const one = mergeCompat(empty, [row('7.2.6', '7.2.6-1~bpo13+1'), row('7.3.4', '7.3.4-1~bpo13+1')]);
  t.same(one.added.length, 2);
  t.same(one.table.rows.map((r) => r.kernel), ['7.3.4', '7.2.6']);
  const two = mergeCompat(one.table, [row('7.2.6', '7.2.6-1~bpo13+1', { classified: 'none', consistent: false, measured: '2026-12-08' }), row('7.2.11', '7.2.11-1~bpo13+1')]);
  t.same(two.added, ['linux-binary-unsigned-7.2.11+deb13-cloud-amd64=7.2.11-1~bpo13+1']);
  t.same(two.replaced, ['linux-binary-unsigned-7.2.6+deb13-cloud-amd64=7.2.6-1~bpo13+1']);
  t.same(two.table.rows.map((r) => r.kernel), ['7.3.4', '7.2.11', '7.2.6'], '7.2.11 sorts above 7.2.6 (numeric, not text)');
  t.equal(two.table.rows[2]!.measured, '2026-12-08', 'the newer measurement replaced the row');
  t.ok(compareCompatRows(row('7.3.4', 'a'), row('7.3-rc7', 'b')) < 0, '7.3.4 above 7.3-rc7');
  t.ok(compareCompatRows(row('7.3-rc7', 'a'), row('7.2.13', 'b')) < 0, '7.3-rc7 above 7.2.13');
  t.end();
});

t.test('parseCompat names the bad field; a written table reads back', (t) => {
  const table = mergeCompat({ schema: COMPAT_SCHEMA, rows: [] }, compatRowsOfRun(run)).table;
  t.same(parseCompat(JSON.parse(JSON.stringify(table))), table);
  t.throws(() => parseCompat({ schema: 'lockstep/compat@9', rows: [] }), /^schema: /);
  t.throws(() => parseCompat({ ...table, rows: [{ ...table.rows[0], measured: 'yesterday' }] }), /^rows\[0\]\.measured: /);
  t.throws(() => parseCompat({ ...table, rows: [{ ...table.rows[0], package: '--upload-pack=x' }] }), /^rows\[0\]\.package: /);
  t.throws(() => parseCompat({ ...table, rows: [{ ...table.rows[0], extra: 1 }] }), /extra/);
  t.end();
});

t.test('renderings: a line per row, escaped', (t) => {
  const table = mergeCompat({ schema: COMPAT_SCHEMA, rows: [] }, [row('7.3.4', '7.3.4-1~bpo13+1', { classified: 'V1b|V3/perf' }), row('7.2.6', '7.2.6-1', { failing: ['memfd-secret'], consistent: false, classified: '<b>none</b>' })]).table;
  const md = renderCompatMarkdown(table);
  t.match(md, /2 kernel package versions: 1 classified as expected, 1 not, 0 open/);
  t.match(md, /\| 7\.3\.4 \| trixie-backports \| cloud-amd64 \| 7\.3\.4-1~bpo13\+1 \| V4\/shared \| V1b\\\|V3\/perf \| yes \| 27 MATCH \| - \| 2026-12-07 \|/);
  const html = renderCompatHtml(table);
  t.match(html, /&lt;b&gt;none&lt;\/b&gt;/);
  t.notMatch(html, /<b>none/);
  t.match(html, /<tr class="bad">/, 'a row not as expected is marked');
  t.equal((html.match(/<tr/g) ?? []).length, 3, 'a header and two rows');
  t.end();
});

t.test('news --specs: one pinned spec per Debian version, the image package preferred, each a valid spec', (t) => {
  const n = (suite: string, pkg: string, version: string, upstream: string): NewsRow => ({ suite, package: pkg, version, upstream, expected: 'V3/perf', reason: '', new: true });
  const rows = [
    n('trixie', 'linux-image-6.12.117+deb13-cloud-amd64-unsigned', '6.12.117-1', '6.12.117'),
    n('trixie-security', 'linux-image-6.12.117+deb13-cloud-amd64-unsigned', '6.12.117-1', '6.12.117'),
    n('bookworm-security', 'linux-image-6.12-cloud-amd64', '6.12.118-1~deb12u1', '6.12.118'),
    n('bookworm-security', 'linux-image-6.12.118+deb12-cloud-amd64-unsigned', '6.12.118-1~deb12u1', '6.12.118'),
    n('bookworm-security', 'linux-image-6.1.0-50-cloud-amd64', '6.1.176-1', '6.1.176'),
    n('bookworm', 'linux-image-6.1.0-50-cloud-amd64-unsigned', '6.1.176-1', '6.1.176'),
  ];
  const specs = specsOfNews(rows);
  t.same(specs.map((s) => [s.suite, s.package, s.package_version]), [
    ['trixie', 'linux-image-6.12.117+deb13-cloud-amd64-unsigned', '6.12.117-1'],
    ['bookworm-security', 'linux-image-6.12.118+deb12-cloud-amd64-unsigned', '6.12.118-1~deb12u1'],
    ['bookworm', 'linux-image-6.1.0-50-cloud-amd64-unsigned', '6.1.176-1'],
  ]);
  t.match(specs[0]!.description, /also served by trixie-security/);
  for (const s of specs) {
    t.match(s.id, ID_RE);
    t.doesNotThrow(() => parseSpec(s, 'specs.json'), `${s.id} is a valid spec`);
  }
  t.equal(newsSpecId('trixie-backports', '7.3.4-1~bpo13+1'), 'debian-trixie-backports-7.3.4-1-bpo13-1');
  t.end();
});

t.test('a kernel fetched but never run (an interrupted run) gives no row', (t) => {
  const k = run.kernels.find((x) => x.id === 'debian-6.1.190')!;
  const rows = compatRowsOfRun({ ...run, kernels: [k], cells: run.cells.filter((c) => c.kernel !== k.id) });
  t.same(rows, []);
  t.end();
});

t.test('classify on an open counter (V4/unknown): says the logic fits and names the counter the cells measure', async (t) => {
  const { classificationText } = await import('../../src/cli/classify-view.ts');
  const c = classifyKernel(run, 'debian-sid-latest');
  t.match(classificationText(c, 'V4/unknown'), /consistent with the expected V4; the counter, open in the facts table, measures perf/);
  t.match(classificationText(c, 'V3/unknown'), /NOT the expected V3 \(counter open\)/);
  t.match(classificationText(c, 'V4/perf'), /consistent with the expected V4\/perf/);
  t.end();
});
