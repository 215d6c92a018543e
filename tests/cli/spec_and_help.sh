#!/usr/bin/env bash
# The CLI's surface: --help, --version, init never overwriting, located spec errors all at once,
# and a build refused before anything is written.
source "$(dirname "$0")/lib.bash"

pibake_ok --help
assert_contains out.log "build"
assert_contains out.log "init"
pibake_ok build --help
assert_contains out.log "--nodes"
assert_contains out.log "--base-image"
pibake_ok --version
grep -qE '^pibake [0-9]+\.[0-9]+\.[0-9]+' out.log || fail "--version prints '$(cat out.log)'"

pibake_ok init
[ -f cluster.yaml ] || fail "init wrote no cluster.yaml"
sum=$(sha256sum cluster.yaml)
if pibake init; then fail "init overwrote cluster.yaml"; fi
assert_contains err.log "already exists"
assert_eq "$(sha256sum cluster.yaml)" "$sum" "cluster.yaml after a second init"
pibake_ok build --dry-run
assert_contains out.log "node-4"
assert_contains out.log "/etc/hostname"

cat > bad.yaml <<'YAML'
cluster: {name: pi, domain: cluster.home}
nodes:
  - {name: node-1, ip: 10.0.0.1}
  - {name: node-2, ip: 10.0.0.300}
network:
  subnett: 10.0.0.0/24
YAML
if pibake build -c bad.yaml --base-image nothing.img --out out; then fail "bad spec accepted"; fi
assert_contains err.log 'bad.yaml:4:'
assert_contains err.log 'nodes[1].ip'
assert_contains err.log '10.0.0.300'
assert_contains err.log 'bad.yaml:6:3'
assert_contains err.log 'subnett'
[ ! -e out ] || [ -z "$(ls -A out)" ] || fail "a refused spec still wrote into out/"

if pibake build --nodes 300 --base-image nothing.img --out out; then fail "300 nodes in a /24 accepted"; fi
assert_contains err.log 'network.subnet: "10.0.0.0/24" is too small: it has 254 host addresses and 300 are needed (one per node)'
echo "ok"
