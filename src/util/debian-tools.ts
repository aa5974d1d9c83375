// The argument vectors lockstep gives apt-get, apt-cache, dpkg-deb, tar, xz
// and zstd, built in one place so a test can read them word for word. Every
// package name, version and file path goes after `--`: each of these tools
// ends its options there (checked with the real tools of Debian 12:
// `apt-cache policy -- -q` looks up a package "-q", `apt-get download --
// -q` says "Unable to locate package -q", `dpkg-deb -f -- -x.deb Package`
// reads the file "-x.deb", GNU tar 1.34, xz and zstd take file names after
// `--`), so a name or path that starts with '-' is never read as an option.
// apt's own options (`-o Dir::...=PATH`, from AptSource.options) come first,
// before the command word, as apt-get(8) documents. Pure.

/** A Debian package name (Debian policy 5.6.1: lower case, digits, + - ., at least two characters, starting alphanumeric). */
export const DEB_PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]+$/;

/** `apt-cache [apt options] policy -- PKG`: the installed and candidate versions. */
export const aptCachePolicyArgv = (options: readonly string[], pkg: string): string[] => [...options, 'policy', '--', pkg];

/** `apt-cache [apt options] madison -- PKG..`: one "pkg | version | source" row per version. */
export const aptCacheMadisonArgv = (options: readonly string[], pkgs: readonly string[]): string[] => [...options, 'madison', '--', ...pkgs];

/** `apt-cache [apt options] pkgnames -- PREFIX`: every package name that starts with PREFIX. */
export const aptCachePkgnamesArgv = (options: readonly string[], prefix: string): string[] => [...options, 'pkgnames', '--', prefix];

/** `apt-get [apt options] download -q -o APT::Sandbox::User=root -- PKG=VERSION..` (into the cwd; sandbox user root: no warning in a root-only dir). */
export const aptGetDownloadArgv = (options: readonly string[], wanted: readonly { package: string; version: string }[]): string[] =>
  [...options, 'download', '-q', '-o', 'APT::Sandbox::User=root', '--', ...wanted.map((w) => `${w.package}=${w.version}`)];

/** `apt-get [apt options] -o APT::Install-Recommends=false -o Debug::NoLocking=true -s -q install -- PKG..`: the simulated install (a dependency closure). */
export const aptGetSimulateInstallArgv = (options: readonly string[], pkgs: readonly string[]): string[] =>
  [...options, '-o', 'APT::Install-Recommends=false', '-o', 'Debug::NoLocking=true', '-s', '-q', 'install', '--', ...pkgs];

/** `apt-get [apt options] update -q` (no positional argument). */
export const aptGetUpdateArgv = (options: readonly string[]): string[] => [...options, 'update', '-q'];

/** `dpkg-deb -f -- DEB FIELD..`: the control fields of a .deb, "Field: value" lines. */
export const dpkgDebFieldsArgv = (deb: string, fields: readonly string[]): string[] => ['-f', '--', deb, ...fields];

/** `dpkg-deb -c -- DEB`: the package's file list (tar tv lines). */
export const dpkgDebContentsArgv = (deb: string): string[] => ['-c', '--', deb];

/** `dpkg-deb --fsys-tarfile -- DEB`: the .deb's data as a tar stream on stdout. */
export const dpkgDebTarArgv = (deb: string): string[] => ['--fsys-tarfile', '--', deb];

/** `tar -x --no-same-owner --wildcards -C INTO -- PATTERN..` (the archive on stdin). */
export const tarExtractArgv = (into: string, patterns: readonly string[]): string[] => ['-x', '--no-same-owner', '--wildcards', '-C', into, '--', ...patterns];

/** `xz -dkf -- FILE`: FILE.xz decompressed beside itself, the .xz kept. */
export const xzDecompressArgv = (file: string): string[] => ['-dkf', '--', file];

/**
 * `zstd -dqf -- FILE`: FILE.zst decompressed beside itself (FILE without .zst).
 * No `-o OUT`: zstd 1.5 refuses an OUT that starts with '-' as an option
 * ("command cannot be separated from its argument"), and beside itself is
 * where lockstep wants it.
 */
export const zstdDecompressArgv = (file: string): string[] => ['-dqf', '--', file];
