#!/usr/bin/env bash
# Build the Debian package: target/debian/wsgate_<version>-1_<arch>.deb (see Cargo.toml,
# [package.metadata.deb]). Needs cargo-deb 3.8.0 (`cargo install cargo-deb --version 3.8.0 --locked`).
#   1. cargo build --release --locked --bin wsgate
#   2. render, with that binary, what the package ships but the repository does not keep:
#      target/deb-assets/{wsgate.1, wsgate.bash, _wsgate, wsgate.fish}
#   3. copy the units from systemd/ with ExecStart=/usr/bin/wsgate into target/deb-assets/systemd/
#      (the files in systemd/ say /usr/local/bin, for a hand install)
#   4. cargo deb --no-build --strip
# Prints the path of the .deb on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "cargo-deb is missing: cargo install cargo-deb --version 3.8.0 --locked" >&2
    exit 1
fi

cargo build --release --locked --bin wsgate
bin=target/release/wsgate
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/systemd"

"$bin" man >"$assets/wsgate.1"
"$bin" completions bash >"$assets/wsgate.bash"
"$bin" completions zsh >"$assets/_wsgate"
"$bin" completions fish >"$assets/wsgate.fish"
for f in wsgate.1 wsgate.bash _wsgate wsgate.fish; do
    [ -s "$assets/$f" ] || { echo "build-deb: $assets/$f is empty" >&2; exit 1; }
done

sed 's#^ExecStart=/usr/local/bin/wsgate #ExecStart=/usr/bin/wsgate #' \
    systemd/wsgate.service >"$assets/systemd/wsgate.service"
grep -q '^ExecStart=/usr/bin/wsgate ' "$assets/systemd/wsgate.service" || {
    echo "build-deb: systemd/wsgate.service: ExecStart no longer starts with /usr/local/bin/wsgate" >&2
    exit 1
}
cp systemd/wsgate.socket "$assets/systemd/wsgate.socket"

# The shipped config must pass the check the unit's users will run.
"$bin" check --config packaging/deb/wsgate.yaml >/dev/null

# --strip: the release profile keeps line tables for backtraces (77 MB binary); the package
# ships the stripped binary.
cargo deb --no-build --locked --strip
