#!/usr/bin/env bash
# The API server's virtual IP with a real keepalived (docs/cluster.md, "Several control planes";
# issue 16 item 5): pibake builds three control planes, and the keepalived.conf and health check
# read back from each image (debugfs) run unchanged in a real keepalived, one per network namespace,
# the three namespaces on one bridge as the Pis are on one switch. Each node's API server is a
# stand-in that answers https://<any>:6443/readyz with a serving certificate issued from the
# state dir's cluster CA for the names kubeadm-init.yaml's certSANs give (openssl s_server).
# Checked from a fourth namespace, as a worker or a laptop would: the VIP answers on exactly one
# node, and the certificate it presents verifies against the cluster CA, while node-3, whose API
# server is still starting, never claims it; the holder powers off (link down first, so its
# goodbye reaches no one, then keepalived killed) and the VIP moves to another control plane; that
# one's API server stops and the VIP moves to the third; the first comes back as from a fresh boot
# and the VIP stays where it is (nopreempt); never two holders at once. docs/cluster.md, "The VIP
# with a real keepalived".
#
# pibake itself runs as nobody; the namespaces, the bridge and keepalived need root (fixture
# set-up), so without root the test is skipped (a failure under CI=true).
source "$(dirname "$0")/lib.bash"
require_tool debugfs openssl curl keepalived ip unshare python3 sh
[ "$(id -u)" = 0 ] || skip "network namespaces and keepalived need root (fixture set-up; pibake itself runs as nobody)"
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"

make_base base.img
printf 'nodes: {count: 3, control_planes: 3}\n' > cluster.yaml
fake_upstream
pibake_ok build --base-image base.img --out out
state=pibake-state
vip=$(sed -n 's/^ *api_vip: //p' "$state/cluster.yaml")
[ -n "$vip" ] || fail "the state dir's cluster.yaml records no api_vip"

# Root-owned, closed directory for what keepalived runs: its enable_script_security refuses a script
# any other user could change, so the scratch dir (world-writable for nobody) will not do.
run=$(mktemp -d /run/pibake-vip.XXXXXX)
tag=pv$$
ns() { echo "$tag-$1"; }
declare -A KA_PID=() API_PID=()
vip_cleanup() {
  local p
  for p in "${KA_PID[@]}" "${API_PID[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in sw c 1 2 3; do ip netns del "$(ns "$p")" 2>/dev/null || true; done
  rm -rf "$run"
}
trap 'vip_cleanup; rm -rf "$SCRATCH"' EXIT

# --- what each node's card holds --------------------------------------------------------------
dump() {  # dump IMG PATH OUT: a file from the image's root filesystem, with debugfs
  rm -f "$3"
  debugfs -R "dump $2 $3" "$1?offset=$(part_offset "$1" 2)" >/dev/null 2>&1
  [ -f "$3" ] || fail "$1: $2 missing"
}
for k in 1 2 3; do
  mkdir -p "$run/node-$k"
  dump "out/node-$k.img" /etc/keepalived/keepalived.conf "$run/node-$k/keepalived.conf"
  dump "out/node-$k.img" /usr/local/sbin/pibake-apiserver-check "$run/node-$k/pibake-apiserver-check"
  dump "out/node-$k.img" /etc/kubernetes/pibake/kubeadm-init.yaml "$run/node-$k/kubeadm-init.yaml"
  chmod 0755 "$run/node-$k/pibake-apiserver-check"
done
chmod -R go-w "$run"

# --- the switch: one bridge, a veth to each node's eth0, and a client ----------------------------
ip netns add "$(ns sw)"
ip -n "$(ns sw)" link add br0 type bridge
ip -n "$(ns sw)" link set br0 up
attach() {  # attach NAME ADDRESS: namespace NAME with eth0 at ADDRESS/24 on the bridge
  local n; n=$(ns "$1")
  ip netns add "$n"
  ip -n "$n" link set lo up
  ip link add "$tag-$1" type veth peer name eth0 netns "$n"
  ip link set "$tag-$1" netns "$(ns sw)"
  ip -n "$(ns sw)" link set "$tag-$1" master br0 up
  ip -n "$n" addr add "$2/24" dev eth0
  ip -n "$n" link set eth0 up
}
for k in 1 2 3; do attach "$k" "10.0.0.$k"; done
attach c 10.0.0.100

# --- each node's API server: a serving certificate from the cluster CA for kubeadm's certSANs -----
sans=$(python3 - "$run/node-1/kubeadm-init.yaml" <<'PY'
import ipaddress, sys, yaml
cc = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d.get("kind") == "ClusterConfiguration")
out = []
for s in cc["apiServer"]["certSANs"] + ["127.0.0.1"]:
    try:
        ipaddress.ip_address(s); out.append("IP:" + s)
    except ValueError:
        out.append("DNS:" + s)
print(",".join(out))
PY
) || fail "node-1's kubeadm-init.yaml has no ClusterConfiguration with apiServer.certSANs"
case ",$sans," in *",IP:$vip,"*) ;; *) fail "the API server's certSANs lack the VIP $vip: $sans" ;; esac
for k in 1 2 3; do
  d=$run/node-$k
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/apiserver.key" \
    -subj "/CN=kube-apiserver-node-$k" -out "$d/apiserver.csr" 2>/dev/null || fail "openssl req for node-$k"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$sans,IP:10.0.0.$k" > "$d/ext"
  openssl x509 -req -in "$d/apiserver.csr" -CA "$state/pki/ca.crt" -CAkey "$state/pki/ca.key" -set_serial "$k" \
    -days 1 -extfile "$d/ext" -out "$d/apiserver.crt" 2>/dev/null || fail "openssl x509 for node-$k"
done
api_start() {  # api_start K: node-K's API server answers on 6443 (any GET gets 200, as /readyz does)
  ip netns exec "$(ns "$1")" openssl s_server -quiet -accept 6443 -www -cert "$run/node-$1/apiserver.crt" \
    -key "$run/node-$1/apiserver.key" >/dev/null 2>&1 &
  API_PID[$1]=$!
}
# api_hang K: node-K's API server accepts connections and never answers (one still starting up), so
# its health check takes its whole timeout to fail.
api_hang() {
  ip netns exec "$(ns "$1")" python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 6443))
s.listen(16)
held = []
while True:
    held.append(s.accept()[0])' >/dev/null 2>&1 &
  API_PID[$1]=$!
  # Listening before anything checks it, so no check fails fast with "connection refused".
  for _ in $(seq 1 100); do
    ip netns exec "$(ns "$1")" ss -Hltn 'sport = :6443' 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  fail "node-$1's hanging API server stand-in did not listen"
}
api_stop() { kill -KILL "${API_PID[$1]}" 2>/dev/null || true; wait "${API_PID[$1]}" 2>/dev/null || true; }

# --- keepalived on each node: the card's configuration and check script, at the card's paths ------
# A private mount namespace per node puts the check script at /usr/local/sbin (a tmpfs there), so the
# configuration runs exactly as pibake wrote it.
ka_start() {  # ka_start K
  local d=$run/node-$1
  ip netns exec "$(ns "$1")" unshare --mount --propagation private sh -c '
    mount -t tmpfs -o mode=0755 tmpfs /usr/local/sbin && cp "$1/pibake-apiserver-check" /usr/local/sbin/ &&
    exec keepalived --dont-fork --log-console --log-detail --vrrp --use-file "$1/keepalived.conf" \
      --pid "$1/keepalived.pid" --vrrp_pid "$1/vrrp.pid" --checkers_pid "$1/checkers.pid"' _ "$d" \
    >> "$SCRATCH/keepalived-$1.log" 2>&1 &
  KA_PID[$1]=$!
}
# power_off K: the node is gone at once. Its link goes down first, so nothing it sends afterwards
# (the VRRP "priority 0" goodbye a dying keepalived sends) reaches the others: they find out by the
# adverts stopping, as with a real power cut. Then keepalived (parent and VRRP child at once) and
# the API server are killed.
power_off() {
  ip -n "$(ns "$1")" link set eth0 down
  pkill -KILL -f "keepalived.*$run/node-$1/keepalived.conf" 2>/dev/null || true
  kill -KILL "${KA_PID[$1]}" 2>/dev/null || true
  api_stop "$1"
}
# power_on K: a fresh boot: the addresses a dead keepalived left are gone, the link comes up, the
# API server starts and keepalived with a new log.
power_on() {
  local n; n=$(ns "$1")
  ip -n "$n" addr flush dev eth0
  ip -n "$n" addr add "10.0.0.$1/24" dev eth0
  ip -n "$n" link set eth0 up
  mv "$SCRATCH/keepalived-$1.log" "$SCRATCH/keepalived-$1.before-power-off.log"
  api_start "$1"
  ka_start "$1"
}

holders() {  # the nodes whose eth0 is up and holds the VIP (a powered-off node holds nothing), space-separated
  local k n out=""
  for k in 1 2 3; do
    n=$(ns "$k")
    ip -n "$n" -o link show dev eth0 2>/dev/null | grep -q '[<,]UP[,>]' || continue
    if ip -n "$n" -4 addr show dev eth0 2>/dev/null | grep -q "inet $vip/"; then out="$out $k"; fi
  done
  echo "${out# }"
}
show_logs() {  # the end of every node's keepalived log, on stderr (what a failure is read from)
  local k
  for k in 1 2 3; do echo "--- keepalived on node-$k" >&2; tail -n 30 "$SCRATCH/keepalived-$k.log" >&2 || true; done
}
# wait_holder EXCLUDE SECONDS: waits until exactly one node, not in EXCLUDE, holds the VIP; echoes it.
# Every sample is also checked for two holders at once (split brain).
wait_holder() {
  local h
  for _ in $(seq 1 $(($2 * 4))); do
    h=$(holders)
    case "$h" in *" "*) fail "two control planes hold the VIP at once: $h" ;; esac
    if [ -n "$h" ] && [[ " $1 " != *" $h "* ]]; then echo "$h"; return 0; fi
    sleep 0.25
  done
  show_logs
  local others=${1:+ other than node-${1// / or node-}}
  fail "no control plane$others took the VIP within $2 s (holders now: '$(holders)')"
}
# answered_by: the node whose API server answered https://VIP:6443/readyz from the client, the
# certificate verified against the cluster CA for the VIP's name (curl), its subject read by openssl.
answered_by() {
  local c; c=$(ns c)
  ip netns exec "$c" curl --silent --fail --max-time 5 --cacert "$state/pki/ca.crt" -o /dev/null \
    "https://$vip:6443/readyz" || return 1
  ip netns exec "$c" openssl s_client -connect "$vip:6443" -CAfile "$state/pki/ca.crt" -verify_return_error \
    </dev/null 2>/dev/null | openssl x509 -noout -subject | sed -n 's/.*kube-apiserver-node-\([0-9]\).*/\1/p'
}
# wait_answer K: within 10 s the VIP's API server is node-K's (the ARP caches of the client follow
# the gratuitous ARPs keepalived sends).
wait_answer() {
  local got=""
  for _ in $(seq 1 40); do
    got=$(answered_by || true)
    [ "$got" != "$1" ] || return 0
    sleep 0.25
  done
  fail "https://$vip:6443/readyz from the client: expected node-$1's API server, got '${got:-no answer}'"
}

# 1. All three boot, node-3 while its API server is still starting (it accepts connections and
# does not answer, so each of its checks takes the full timeout): exactly one of the others takes
# the VIP and it answers; node-3 (init_fail) stays in FAULT from the start, never a backup or the
# holder while its check has not passed.
api_start 1
api_start 2
api_hang 3
for k in 1 2 3; do ka_start "$k"; done
first=$(wait_holder "3" 30)
note "node-$first holds $vip"
wait_answer "$first"
for _ in $(seq 1 40); do
  assert_eq "$(holders)" "$first" "the VIP's holder while node-3's API server is down"
  sleep 0.25
done
# init_fail: it starts in FAULT (keepalived logs no transition for that) and stays there.
grep -q "VRRP_Script(pibake_apiserver) timed out\|VRRP_Script(pibake_apiserver) failed" "$SCRATCH/keepalived-3.log" ||
  { tail -n 20 "$SCRATCH/keepalived-3.log" >&2; fail "node-3's health check did not run and fail while its API server was down"; }
if grep -qE "Entering (MASTER|BACKUP) STATE" "$SCRATCH/keepalived-3.log"; then
  tail -n 20 "$SCRATCH/keepalived-3.log" >&2; fail "node-3 left FAULT while its API server was down"
fi
# node-3's API server comes up: its check passes and it becomes a backup.
api_stop 3
api_start 3
for _ in $(seq 1 60); do grep -q "Entering BACKUP STATE" "$SCRATCH/keepalived-3.log" && break; sleep 0.25; done
grep -q "Entering BACKUP STATE" "$SCRATCH/keepalived-3.log" ||
  { tail -n 20 "$SCRATCH/keepalived-3.log" >&2; fail "node-3 did not become a backup once its API server answered"; }
assert_eq "$(holders)" "$first" "the VIP's holder once node-3 is a backup"

# 2. The holder powers off: another control plane takes the VIP, and the VIP answers with its API server.
power_off "$first"
second=$(wait_holder "$first" 20)
note "node-$first powered off: node-$second holds $vip"
wait_answer "$second"

# 3. That node's API server stops (its keepalived runs on): the health check fails and the VIP
# moves to the one control plane left.
api_stop "$second"
third=$(wait_holder "$first $second" 60)
note "node-$second's API server stopped: node-$third holds $vip"
wait_answer "$third"
[ -z "$(ip -n "$(ns "$second")" -4 addr show dev eth0 | grep "inet $vip/")" ] || fail "node-$second kept the VIP without an API server"

# 4. The first comes back: nopreempt leaves the VIP where it is, whatever the priorities.
# Not within the seconds after step 3's failover, though: node-$second's "priority 0" advert to
# node-$first's address waits in node-$second's kernel while that address does not resolve
# (neighbour state INCOMPLETE, about 3 s); handed to a node-$first that came back meanwhile, it
# says the master has left and node-$first takes the VIP with its higher priority (RFC 5798
# 6.4.2: a real VRRP race, no split brain, but not what this step checks). So node-$first comes
# back once nothing of node-$second's waits for it.
for _ in $(seq 1 40); do
  ip -n "$(ns "$second")" neigh show "10.0.0.$first" | grep -q INCOMPLETE || break
  sleep 0.25
done
power_on "$first"
api_start "$second"
for _ in $(seq 1 60); do
  h=$(holders)
  [ "$h" = "$third" ] || show_logs
  assert_eq "$h" "$third" "the VIP's holder while node-$first and node-$second's API server come back"
  sleep 0.25
done
wait_answer "$third"
grep -q "Entering BACKUP STATE" "$SCRATCH/keepalived-$first.log" ||
  { tail -n 20 "$SCRATCH/keepalived-$first.log" >&2; fail "node-$first did not come back as a VRRP backup"; }
note "node-$first came back as a backup; the VIP stayed on node-$third"
echo "PASS ($TEST_NAME)"
