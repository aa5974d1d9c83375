#!/usr/bin/env bash
# Installs what lockstep needs on Debian 12 and builds the reproducer.
# Idempotent and quick when everything is there. As root it installs
# missing apt packages itself; otherwise it prints the exact command.
set -euo pipefail
cd "$(dirname "$0")/.."

# package -> a file that proves it is installed
declare -A PROBE=(
  [qemu-system-x86]=/usr/bin/qemu-system-x86_64
  # arm64 guests ("arch": "arm64"): the emulator and the reproducer's cross compiler (harness/Makefile)
  [qemu-system-arm]=/usr/bin/qemu-system-aarch64
  [gcc-aarch64-linux-gnu]=/usr/bin/aarch64-linux-gnu-gcc
  [libc6-dev-arm64-cross]=/usr/aarch64-linux-gnu/include/stdio.h
  [busybox-static]=/bin/busybox
  [gcc]=/usr/bin/gcc
  [libc6-dev]=/usr/include/stdio.h
  [make]=/usr/bin/make
  [linux-libc-dev]=/usr/include/linux/perf_event.h
  # container mode (src/runner/container.ts): the Docker engine; .ci/run starts dockerd
  [docker.io]=/usr/sbin/dockerd
  # test/report.test.ts renders report.html headless
  [chromium]=/usr/bin/chromium
  # source kernels (src/kernels/build.ts): the 6.1 base tree and what kbuild needs
  [linux-source-6.1]=/usr/src/linux-source-6.1.tar.xz
  [bc]=/usr/bin/bc
  [flex]=/usr/bin/flex
  [bison]=/usr/bin/bison
  [libelf-dev]=/usr/include/libelf.h
  [libssl-dev]=/usr/include/openssl/ssl.h
  [ccache]=/usr/bin/ccache
  [patch]=/usr/bin/patch
  [xz-utils]=/usr/bin/xz
  # old trees (src/kernels/obtain/source/toolchain.ts): releases before v5.15 build with gcc-11
  [gcc-11]=/usr/bin/gcc-11
  # the virtme runtime (src/runner/virtme.ts): virtme-ng's dependencies (it comes from trixie, below),
  # and udevd, which vng's guest init runs to find its virtio-serial I/O ports
  [python3-argcomplete]=/usr/lib/python3/dist-packages/argcomplete/__init__.py
  [python3-requests]=/usr/lib/python3/dist-packages/requests/__init__.py
  [python3-pkg-resources]=/usr/lib/python3/dist-packages/pkg_resources/__init__.py
  [file]=/usr/bin/file
  [kmod]=/usr/bin/kmod
  [udev]=/lib/systemd/systemd-udevd
  [libxml2-utils]=/usr/bin/xmllint [clang]=/usr/bin/clang  # test/unit: junit.xml schema check; repro.c built with clang too
)
missing=()
for p in "${!PROBE[@]}"; do
  [ -e "${PROBE[$p]}" ] || missing+=("$p")
done
# Debian's plain busybox is dynamic; the guest needs the static one.
if [ -e /bin/busybox ] && ! dpkg -s busybox-static >/dev/null 2>&1; then missing+=(busybox-static); fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "lockstep setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "lockstep setup: missing packages: ${missing[*]}" >&2
    echo "  fix: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
fi

# virtme-ng (vng) is packaged from Debian 13 (trixie), Architecture: all: fetched
# with lockstep's own trixie apt lists (as src/kernels/obtain/apt-suite.ts keeps
# them under the cache; the machine's apt configuration is not touched) and
# installed with dpkg -i.
if ! command -v vng >/dev/null; then
  suite_dir="${LOCKSTEP_CACHE:-$HOME/.cache/lockstep}/apt/trixie"
  apt_o=(-o "Dir::Etc::SourceList=$suite_dir/sources.list" -o Dir::Etc::SourceParts=- -o "Dir::State::Lists=$suite_dir/lists"
    -o "Dir::Cache=$suite_dir/cache" -o "Dir::State::status=$suite_dir/status" -o Dir::Etc::Preferences=/dev/null
    -o Dir::Etc::PreferencesParts=- -o APT::Architectures=amd64 -o APT::Architecture=amd64 -o APT::Sandbox::User=root)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "lockstep setup: installing virtme-ng from Debian trixie (lists in $suite_dir)" >&2
    mkdir -p "$suite_dir/lists/partial" "$suite_dir/cache/archives/partial"
    [ -s "$suite_dir/sources.list" ] || echo "deb http://deb.debian.org/debian trixie main" > "$suite_dir/sources.list"
    touch "$suite_dir/status"
    [ -e "$suite_dir/updated" ] || { apt-get "${apt_o[@]}" update -qq && date -u +%FT%TZ > "$suite_dir/updated"; }
    deb_dir=$(mktemp -d)
    (cd "$deb_dir" && apt-get "${apt_o[@]}" download -qq virtme-ng) && dpkg -i "$deb_dir"/virtme-ng_*.deb >/dev/null
    rm -rf "$deb_dir"
  else
    echo "lockstep setup: vng (virtme-ng) is missing; the virtme runtime needs it" >&2
    echo "  fix (as root): bash .ci/setup.sh   (downloads virtme-ng from Debian trixie and dpkg -i's it)" >&2
  fi
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "lockstep setup: Node.js >= 20 is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 2
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "lockstep setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# tap's Test class is built with the plugins package.json's "tap" section
# names (fewer than tap's defaults: no @tapjs/typescript, no @tapjs/mock).
# tap rebuilds it at the start of a run when they differ, but that run's test
# processes still get the old build's loaders: the first unit run after
# `npm ci` took 135-150 s instead of 80-90 s. So build it here, when
# package.json changed since the last build (the marker holds its sha256).
tap_mark=node_modules/.lockstep-tap-build
tap_want=$(sha256sum package.json | cut -d' ' -f1)
if [ "$(cat "$tap_mark" 2>/dev/null)" != "$tap_want" ]; then
  echo "lockstep setup: building tap's test class with the configured plugins" >&2
  npx --no-install tap build >&2 && echo "$tap_want" > "$tap_mark"
fi

# The compiled build bin/lockstep.mjs runs while it matches src/ (bin/dist-stamp.mjs);
# bin/build.mjs does nothing when it already does, about 10 s of tsc when not.
node bin/build.mjs >&2

# Container mode (the host-container kernel, test/container.test.ts) needs a
# Docker engine: start dockerd (docker.io) when none answers and we are root.
engine_up() {
  [ -S /var/run/docker.sock ] && node -e "require('http').get({socketPath: '/var/run/docker.sock', path: '/_ping'}, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"
}
if ! engine_up; then
  if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null; then
    echo "lockstep setup: starting dockerd (log: /var/log/dockerd.log)" >&2
    setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do engine_up && break; sleep 1; done
    engine_up || { echo "lockstep setup: dockerd did not answer within 60 s:" >&2; tail -n 20 /var/log/dockerd.log >&2; }
  else
    echo "lockstep setup: no Docker engine answers on /var/run/docker.sock; host-container cells need one (fix: start dockerd as root)" >&2
  fi
fi

make -s -C harness >&2
