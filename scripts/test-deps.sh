#!/usr/bin/env bash
# Installs what the test suites need: Debian packages (when run as root with apt),
# npm tools under .tools/ (Azurite), and the Go modules pinned in go.sum.
# Outside CI a failed install is reported and the suites that need it skip with
# a message; under CI=true any failure stops the run.
set -uo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ffmpeg fonts-dejavu-core sox libsox-fmt-all opus-tools openssh-server iproute2 util-linux janus chromium chromium-driver postgresql)
NPM_PACKAGES=(azurite@3.37.0)

missing=()
fail() {
	echo "test-deps: $*" >&2
	if [ "${CI:-}" = "true" ]; then exit 1; fi
	missing+=("$*")
}

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "test-deps: installing Debian packages: ${need_apt[*]}"
		if ! (apt-get install -y --no-install-recommends "${need_apt[@]}" >/tmp/recorder-apt.log 2>&1 ||
			(apt-get update >>/tmp/recorder-apt.log 2>&1 &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}" >>/tmp/recorder-apt.log 2>&1)); then
			fail "could not install Debian packages ${need_apt[*]} (see /tmp/recorder-apt.log)"
		fi
	else
		fail "Debian packages not installed and not root to install them: ${need_apt[*]}"
	fi
fi

if command -v npm >/dev/null; then
	mkdir -p .tools
	for p in "${NPM_PACKAGES[@]}"; do
		name=${p%@*}
		if [ ! -e ".tools/node_modules/.bin/${name}-blob" ] && [ ! -e ".tools/node_modules/.bin/${name}" ]; then
			echo "test-deps: installing npm package $p into .tools/"
			npm install --prefix .tools --no-audit --no-fund --silent "$p" >/tmp/recorder-npm.log 2>&1 ||
				fail "could not install npm package $p (see /tmp/recorder-npm.log)"
		fi
	done
else
	fail "npm is not installed: the Azure suite needs Azurite from npm"
fi

go mod download || fail "go mod download failed"
(cd internal/s3gateway && go mod download) || fail "go mod download failed in internal/s3gateway (the versitygw S3 test server)"

if [ ${#missing[@]} -gt 0 ]; then
	echo "test-deps: NOT INSTALLED (the tests that need these will say they skipped):"
	printf '  - %s\n' "${missing[@]}"
fi
exit 0
