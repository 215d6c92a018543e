#!/bin/sh
# pibake stand-in for kubelet, kubeadm, kubectl and crictl, used by the QEMU end-to-end test (installed
# under each name through pibake's normal artifact path: no arm64 Kubernetes binaries can be
# downloaded on the test machine) and by tests/cli/bootstrap.sh. It records every call (time, name,
# arguments) in $LOG/calls.log and follows the real tools where pibake's bootstrap depends on them:
#
#   kubeadm init --config F   runs kubeadm's init phases in kubeadm's order (cmd/kubeadm/app/cmd/
#                             init.go: preflight, certs, kubeconfig, etcd, control-plane, kubelet-start,
#                             wait-control-plane, upload-config, upload-certs, mark-control-plane,
#                             bootstrap-token, kubelet-finalize, addon/coredns, addon/kube-proxy,
#                             show-join-command), each leaving the files or cluster objects the real
#                             phase leaves. Preflight refuses, as kubeadm does, existing manifests or
#                             a non-empty /var/lib/etcd (unless --ignore-preflight-errors names
#                             DirAvailable--var-lib-etcd, or all); it also refuses a config that does not parse
#                             as YAML or lacks kubeadm's documents, missing pibake CA material
#                             (kubeadm would silently make a new CA that pibake's workers distrust),
#                             and a control-plane image containerd lacks (kubeadm would pull it:
#                             offline an ImagePull error).
#   kubeadm join --config F   a control plane joining (JoinConfiguration with controlPlane), in the
#                             order of kubeadm's cmd/kubeadm/app/cmd/join.go: preflight,
#                             control-plane-prepare, check-etcd, kubelet-start, etcd-join,
#                             kubelet-wait-bootstrap, mark-control-plane, wait-control-plane.
#                             Preflight refuses what kubeadm refuses: a config without a
#                             JoinConfiguration, a discovery file without credentials (no token
#                             is given), a cluster that does not answer, an existing kubelet.conf
#                             or manifest, a non-empty /var/lib/etcd, missing shared CA material
#                             (no certificate key is given) and an image containerd lacks. etcd's
#                             part is real: check-etcd runs `etcdctl endpoint health --cluster`
#                             and etcd-join `etcdctl member add`, against $PIBAKE_STAND_IN_ETCD.
#   kubeadm init phase certs etcd-healthcheck-client --config F
#                             issues etcd/healthcheck-client.{crt,key} from the etcd CA with
#                             openssl, as kubeadm does (CN kube-etcd-healthcheck-client, clientAuth)
#   kubeadm reset -f          removes what kubeadm reset removes: /etc/kubernetes/manifests/*, the
#                             kubeconfigs, the certificatesDir content, /var/lib/etcd, /var/lib/kubelet
#   kubectl get|apply|label   against the stand-in cluster (get TYPE/NAME or TYPE NAME, apply -f FILE
#                             or a directory's .json/.yaml/.yml files): objects are files under
#                             /var/lib/etcd/pibake-stand-in (so a reset wipes them); the API answers
#                             once wait-control-plane has passed. apply refuses a manifest that does
#                             not parse or whose documents lack apiVersion, kind or metadata.name.
#   kubelet ...               stays running, so kubelet.service is active
#   anything else             exits 0
# It does not start a control plane: the tests check what pibake does, not Kubernetes, except in
# the static-pods mode below.
#
# PIBAKE_STAND_IN_MODE=static-pods (the QEMU run with three control planes, tests/e2e/cluster.sh):
# the control plane runs for real where a real binary can run here. kubeadm's certs phases issue the
# API server's and etcd's certificates with openssl from the CAs pibake placed; its etcd,
# control-plane and etcd-join phases write static-pod manifests (kubeadm's etcd flags; etcd as a
# learner that is then promoted, kubeadm's EtcdLearnerMode); kubeadm restarts the kubelet, and the
# kubelet runs the manifests: etcd through containerd (`ctr run`, the card's etcd image, which in
# the QEMU run holds Debian's arm64 etcd), the API server as a small HTTPS server (python3) on
# :6443 that keeps the cluster's objects in that etcd and answers /readyz while its etcd is
# healthy. kubectl and kubeadm's later phases reach the cluster through the API server their
# kubeconfig names (the control-plane endpoint), so every control plane sees the same objects;
# join finds the etcd members through the API (the etcd pods' advertise-client-urls annotation, as
# kubeadm's etcdutil does); reset stops the static pods and takes this member out of etcd.
#
# Faults (PIBAKE_STAND_IN_FAULTS, whitespace-separated; unset: the e2e plan below, empty: none):
#   init:PHASE:MODE[:N]   the first N (default 1) `kubeadm init` calls hit MODE at the start of PHASE
#   apply:MODE[:N]        the first N `kubectl apply` calls hit MODE
#   label:MODE[:N]        the first N `kubectl label` calls hit MODE
# MODE: fail (exit 1 with kubeadm's "error execution phase" line), hang (sleep until killed), cut
# (a power cut: SIGKILL to every process of the caller's session, so run the caller under setsid).
#   join:PHASE:MODE[:N]   the first N `kubeadm join` calls hit MODE at the start of PHASE
# Env: PIBAKE_TEST_ROOT (a scratch root; default /), PIBAKE_STAND_IN_LOG (default $ROOT/var/log/pibake-e2e),
# PIBAKE_STAND_IN_CLUSTER (the store of a cluster that already runs elsewhere, reached through the
# endpoint: kubectl reads it and join adds to it; default the node's own store),
# PIBAKE_STAND_IN_ETCD (that cluster's etcd client URLs, comma-separated, for join's etcd phases),
# PIBAKE_STAND_IN_MODE (files, the default, static-pods: above, or hard-way: kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy and the kubelet check what they read at start,
# hard_way_component below; kube-apiserver then serves as in static-pods, from the etcd its flags
# name, the kubelet registers its node there, and kubectl reaches the cluster through the server
# its kubeconfig names).
e2e_faults="init:wait-control-plane:fail apply:fail label:fail"
faults=${PIBAKE_STAND_IN_FAULTS-$e2e_faults}
ROOT=${PIBAKE_TEST_ROOT:-}
K8S=$ROOT/etc/kubernetes
MODE=${PIBAKE_STAND_IN_MODE:-files}
STORE=${PIBAKE_STAND_IN_CLUSTER:-$ROOT/var/lib/etcd/pibake-stand-in}
name=${0##*/}
SELF=$0
LOG=${PIBAKE_STAND_IN_LOG:-$ROOT/var/log/pibake-e2e}
mkdir -p "$LOG"
echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $name $*" >> "$LOG/calls.log"
note() { echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $name: $*" >> "$LOG/calls.log"; }
die() { echo "$*" >&2; note "$*"; exit 1; }
# uptime_s: whole seconds since boot (CLOCK_BOOTTIME, /proc/uptime): kubeadm's timeouts are
# monotonic, and the clock of a Pi that just booted jumps when NTP or the clock floor sets it.
uptime_s() { cut -d. -f1 /proc/uptime; }
# within SECONDS CMD...: runs CMD every 5 s until it succeeds (0) or SECONDS have passed since the
# first try (1, by uptime_s); either way $waited is the seconds it took.
within() {
  _limit=$1
  shift
  _since=$(uptime_s)
  until "$@"; do
    waited=$(($(uptime_s) - _since))
    [ "$waited" -lt "$_limit" ] || return 1
    sleep 5
  done
  waited=$(($(uptime_s) - _since))
}

# count KEY: this call's number among calls of KEY (kept in $LOG across reboots and resets).
count() {
  n=$(cat "$LOG/count-$1" 2>/dev/null || echo 0)
  n=$((n + 1))
  echo "$n" > "$LOG/count-$1"
  echo "$n"
}
# fault_for WHAT CALL: the MODE the fault plan gives call number CALL of WHAT (e.g. "init:etcd"), or nothing.
fault_for() {
  for f in $faults; do
    case "$f" in "$1":*) ;; *) continue ;; esac
    rest=${f#"$1":}
    mode=${rest%%:*}
    limit=1
    [ "$mode" = "$rest" ] || limit=${rest#*:}
    [ "$2" -le "$limit" ] && { echo "$mode"; return 0; }
  done
  return 0
}
# hit MODE WHAT: carries out a fault.
hit() {
  note "fault: $1 at $2"
  case "$1" in
    fail) echo "error execution phase $2: stand-in fault (PIBAKE_STAND_IN_FAULTS)" >&2; exit 1 ;;
    hang) exec /bin/sleep 100000 ;;
    cut) pkill -KILL -s "$(cut -d' ' -f6 /proc/$$/stat)"; exit 137 ;;
    *) die "stand-in: unknown fault mode '$1'" ;;
  esac
}

# yaml_docs FILE: "apiVersion kind name" per document ("-" for a missing field), or exit 1 with the
# parser's message (also `k8s-stand-in.sh yaml-docs FILE`, for the CLI tests). The
# parser is python3-yaml, independent of pibake's writer. A file parsed before (same sha256) is
# not parsed again: the answer is kept in $PARSED (PIBAKE_STAND_IN_PARSED, default $LOG/parsed).
PARSED=${PIBAKE_STAND_IN_PARSED:-$LOG/parsed}
yaml_docs() {
  sum=$(sha256sum < "$1" | cut -c1-64) || return 1
  if [ -s "$PARSED/$sum" ]; then cat "$PARSED/$sum"; return 0; fi
  mkdir -p "$PARSED"
  yaml_parse "$1" > "$PARSED/$sum.tmp" || { rm -f "$PARSED/$sum.tmp"; return 1; }
  mv "$PARSED/$sum.tmp" "$PARSED/$sum"
  cat "$PARSED/$sum"
}
yaml_parse() {
  python3 - "$1" <<'PY'
import sys, yaml
try:
    docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
except yaml.YAMLError as e:
    sys.exit("%s does not parse: %s" % (sys.argv[1], e))
if not docs:
    sys.exit("%s holds no document" % sys.argv[1])
for d in docs:
    if not isinstance(d, dict):
        sys.exit("%s: a document is not a mapping" % sys.argv[1])
    meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
    print(d.get("apiVersion") or "-", d.get("kind") or "-", meta.get("name") or "-")
PY
}

# resource KIND: kubectl's resource name for KIND (ConfigMap, configmap, configmaps -> configmaps).
resource() {
  r=$(echo "$1" | tr '[:upper:]' '[:lower:]')
  case "$r" in *s) echo "$r" ;; *) echo "${r}s" ;; esac
}
# The cluster's objects, by path (NAMESPACE/RESOURCE/NAME, or RESOURCE/NAME for nodes and
# clusterrolebindings): files under $STORE, or (static-pods, hard-way: via_api) the API server at
# $API with CA $API_CA.
# store_put PATH CONTENT, store_get PATH (exit 1 when absent, 2 when the API server gave no answer
# for it: a 5xx after curl's retries, a refused or timed-out connection), store_del PATH, store_ls
# DIR (names). kubectl and the kubelet tell NotFound from a server error the same way.
API=https://127.0.0.1:6443
API_CA=$K8S/pki/ca.crt
# via_api: the modes whose cluster runs behind a (stand-in) API server, with a real etcd.
via_api() { [ "$MODE" = static-pods ] || [ "$MODE" = hard-way ]; }
api() {  # api METHOD PATH [curl args]: a request to the API server, its body on stdout
  _m=$1 _p=$2
  shift 2
  curl --silent --show-error --fail --max-time 20 --retry 4 --retry-delay 2 --retry-connrefused --cacert "$API_CA" \
    -X "$_m" "$@" "$API$_p"
}
store_put() {
  if via_api; then printf '%s\n' "$2" | api PUT "/stand-in/objects/$1" --data-binary @- >/dev/null; return; fi
  mkdir -p "$(dirname "$STORE/$1")" && printf '%s\n' "$2" > "$STORE/$1"
}
NL='
'
store_get() {
  if via_api; then
    # The body, then the status on a line of its own (curl writes it on failure too: 000 when
    # nothing answered).
    _got=$(api GET "/stand-in/objects/$1" -w "\n%{http_code}" 2>/dev/null)
    case ${_got##*"$NL"} in
      200) printf '%s' "${_got%"$NL"*}" ;;
      404) return 1 ;;
      *) echo "stand-in: GET /stand-in/objects/$1: HTTP ${_got##*"$NL"}" >&2 && return 2 ;;
    esac
    return 0
  fi
  cat "$STORE/$1" 2>/dev/null
}
# fail_get RC KIND NAME: kubectl's error for a store_get of KIND NAME that exited RC (1: NotFound;
# 2: the server did not answer); exits 1 either way.
fail_get() {
  [ "$1" != 1 ] || die "Error from server (NotFound): $2 \"$3\" not found"
  die "Error from server (ServiceUnavailable): the server is currently unable to handle the request (get $2 $3)"
}
store_del() {
  if via_api; then api DELETE "/stand-in/objects/$1" >/dev/null; return; fi
  rm -f "$STORE/$1"
}
store_ls() {
  if via_api; then api GET "/stand-in/objects/$1/"; return; fi
  for f in "$STORE/$1"/*; do [ ! -e "$f" ] || echo "${f##*/}"; done
}
# put KIND NAMESPACE NAME [CONTENT]: an object in the stand-in cluster.
put() {
  r=$(resource "$1")
  store_put "${2:+$2/}$r/$3" "${4:-}"
}
# use_kubeconfig FILE (via_api): $API and $API_CA become the server and CA of the cluster that
# FILE's current-context names, as kubectl reads a kubeconfig (YAML: quoted or not).
use_kubeconfig() {
  via_api || return 0
  API_CA=$LOG/ca-of-$(echo "$1" | tr / _)
  API=$(python3 - "$1" "$API_CA" <<'PY'
import base64, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
ctx = {x["name"]: x["context"] for x in c.get("contexts") or []}.get(c.get("current-context"), {})
clusters = {x["name"]: x["cluster"] for x in c.get("clusters") or []}
cl = clusters.get(ctx.get("cluster"))
if cl is None:
    sys.exit("error: no context is set or it names no cluster")
open(sys.argv[2], "wb").write(base64.b64decode(cl["certificate-authority-data"]))
print(cl["server"])
PY
  ) || die "error: $1 names no server or certificate-authority-data"
  if [ -z "$API" ] || [ ! -s "$API_CA" ]; then die "error: $1 names no server or certificate-authority-data"; fi
}
# The API server answers: this node's own (after its wait-control-plane phase), or the cluster's
# that runs elsewhere; in static-pods and hard-way modes the one at $API, for real.
api_up() {
  if via_api; then [ "$(api GET /readyz 2>/dev/null)" = ok ]; return; fi
  if [ -n "${PIBAKE_STAND_IN_CLUSTER:-}" ]; then [ -e "$STORE/apiserver-up" ]; else
    [ -e "$STORE/apiserver-up" ] && [ -e "$K8S/manifests/kube-apiserver.yaml" ]
  fi
}
write() {  # write MODE FILE: a stand-in file as the phase writes it
  mkdir -p "$(dirname "$2")"
  echo "# written by the pibake kubeadm stand-in" > "$2"
  chmod "$1" "$2"
}

# control_plane_images CONFIG: the images `kubeadm config images list --config CONFIG` names, one
# per line: kube-apiserver, kube-controller-manager, kube-scheduler and kube-proxy at
# kubernetesVersion, etcd and coredns/coredns at the ClusterConfiguration's imageTag (pibake pins
# both), under imageRepository; and pause, kubeadm's constant for the version, taken here from the
# sandbox image containerd's config names (pibake writes kubeadm's there).
control_plane_images() {
  python3 - "$1" "$ROOT/etc/containerd/config.toml" <<'PY'
import re, sys, yaml
cc = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if isinstance(d, dict) and d.get("kind") == "ClusterConfiguration")
repo, version = cc["imageRepository"], cc["kubernetesVersion"]
for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
    print(f"{repo}/{c}:{version}")
print(f"{repo}/etcd:{cc['etcd']['local']['imageTag']}")
print(f"{repo}/coredns/coredns:{cc['dns']['imageTag']}")
print(re.search(r"^\s*(?:sandbox_image|sandbox)\s*=\s*[\"']([^\"']+)", open(sys.argv[2]).read(), re.M).group(1))
PY
}

# read_config ARGS...: the value of --config among kubeadm's arguments, in $config.
read_config() {
  config=""
  ignored=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --config) config=$2; shift ;;
      --config=*) config=${1#--config=} ;;
      --ignore-preflight-errors) ignored="$ignored,$2"; shift ;;
      --ignore-preflight-errors=*) ignored="$ignored,${1#--ignore-preflight-errors=}" ;;
    esac
    shift
  done
  # kubeadm compares the check names lower-cased (validation.ValidateIgnorePreflightErrors).
  ignored=$(echo "$ignored" | tr '[:upper:]' '[:lower:]')
}
# ignoring CHECK: the check is in --ignore-preflight-errors (or "all" is): kubeadm then reports
# it as a warning and goes on.
ignoring() {
  case ",$ignored," in
    *,all,* | *,"$(echo "$1" | tr '[:upper:]' '[:lower:]')",*) echo "[WARNING $1]: ignored (stand-in)"; note "preflight: $1 ignored"; return 0 ;;
  esac
  return 1
}
# phase NAME: kubeadm's phase line, then the fault the plan gives call $call of `kubeadm $op`.
phase() {
  echo "[$1] (stand-in)"
  m=$(fault_for "$op:$1" "$call")
  [ -z "$m" ] || hit "$m" "$1"
}
# preflight_node: kubeadm's preflight checks that no control plane ran here before: no static-pod
# manifest (FileAvailable) and an empty /var/lib/etcd (DirAvailable).
preflight_node() {
  for m in kube-apiserver kube-controller-manager kube-scheduler etcd; do
    [ ! -e "$K8S/manifests/$m.yaml" ] ||
      die "[ERROR FileAvailable--etc-kubernetes-manifests-$m.yaml]: $K8S/manifests/$m.yaml already exists"
  done
  [ -z "$(ls -A "$ROOT/var/lib/etcd" 2>/dev/null)" ] || ignoring DirAvailable--var-lib-etcd ||
    die "[ERROR DirAvailable--var-lib-etcd]: $ROOT/var/lib/etcd is not empty"
}
# preflight_images CONFIG: kubeadm's preflight pulls each control-plane image the container runtime
# lacks (phases/init/preflight.go, images.GetControlPlaneImages: `kubeadm config images list`).
# Offline the pull fails with an ImagePull error, so the stand-in asks containerd (ctr, namespace
# k8s.io) and refuses naming the first image it lacks; it never pulls.
preflight_images() {
  images=$(control_plane_images "$1") || die "kubeadm stand-in: cannot list the control plane's images from $1"
  present=$(ctr --namespace k8s.io images ls -q 2>/dev/null)
  for image in $images; do
    echo "$present" | grep -qxF "$image" ||
      die "[ERROR ImagePull]: failed to pull image $image: no network (stand-in: not in containerd's k8s.io namespace)"
  done
  note "preflight: $(echo "$images" | wc -w) control-plane images already in containerd, none pulled"
}

kubeadm_init() {
  read_config "$@"
  op="init"
  call=$(count init)
  phase preflight
  [ -r "$config" ] || die "kubeadm stand-in: no readable --config"
  docs=$(yaml_docs "$config") || die "kubeadm stand-in: the config does not parse"
  for want in "kubeadm.k8s.io/v1beta4 InitConfiguration" "kubeadm.k8s.io/v1beta4 ClusterConfiguration" \
    "kubelet.config.k8s.io/v1beta1 KubeletConfiguration"; do
    echo "$docs" | grep -q "^$want " || die "kubeadm stand-in: no $want document in $config"
  done
  cp "$config" "$LOG/kubeadm-init.yaml"
  preflight_node
  for f in ca.crt ca.key sa.key sa.pub front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key; do
    [ -s "$K8S/pki/$f" ] || die "kubeadm stand-in: $K8S/pki/$f is missing (kubeadm would make a new one)"
  done
  preflight_images "$config"
  node=$(sed -n 's/^  name: *//p' "$config" | head -n 1)
  node=${node:-node-1}
  address=$(sed -n 's/^  advertiseAddress: *//p' "$config" | head -n 1)
  phase certs
  if [ "$MODE" = static-pods ]; then
    cluster_config
    [ "$cp_endpoint" != - ] || cp_endpoint=$address:6443
    control_plane_certs "$node" "$address"
  else
    for c in apiserver apiserver-kubelet-client front-proxy-client apiserver-etcd-client etcd/server etcd/peer \
      etcd/healthcheck-client; do
      write 0644 "$K8S/pki/$c.crt"
      write 0600 "$K8S/pki/$c.key"
    done
  fi
  phase kubeconfig
  for c in admin super-admin kubelet controller-manager scheduler; do
    if [ "$MODE" = static-pods ]; then kubeconfig "$K8S/$c.conf"; else write 0600 "$K8S/$c.conf"; fi
  done
  phase etcd
  if [ "$MODE" = static-pods ]; then
    etcd_manifest "$node" "$address" "$node=https://$address:2380" new
  else
    write 0600 "$K8S/manifests/etcd.yaml"
    mkdir -p "$ROOT/var/lib/etcd/member" && chmod 0700 "$ROOT/var/lib/etcd"
  fi
  phase control-plane
  if [ "$MODE" = static-pods ]; then apiserver_manifest "$address"; else write 0600 "$K8S/manifests/kube-apiserver.yaml"; fi
  for m in kube-controller-manager kube-scheduler; do write 0600 "$K8S/manifests/$m.yaml"; done
  phase kubelet-start
  write 0644 "$ROOT/var/lib/kubelet/config.yaml"
  write 0644 "$ROOT/var/lib/kubelet/kubeadm-flags.env"
  restart_kubelet
  phase wait-control-plane
  wait_local_api
  [ "$MODE" = static-pods ] || { mkdir -p "$STORE" && touch "$STORE/apiserver-up"; }
  put nodes "" "$node"
  put pods kube-system "etcd-$node" "kubeadm.kubernetes.io/etcd.advertise-client-urls=https://$address:2379"
  phase upload-config
  put configmaps kube-system kubeadm-config
  put configmaps kube-system kubelet-config
  phase upload-certs
  phase mark-control-plane
  put nodes "" "$node" "node-role.kubernetes.io/control-plane="
  phase bootstrap-token
  put secrets kube-system bootstrap-token-stand-in
  put configmaps kube-public cluster-info
  for b in kubeadm:get-nodes kubeadm:kubelet-bootstrap kubeadm:node-autoapprove-bootstrap \
    kubeadm:node-autoapprove-certificate-rotation; do
    put clusterrolebindings "" "$b"
  done
  phase kubelet-finalize
  write 0600 "$K8S/kubelet.conf"
  phase addon/coredns
  put deployments kube-system coredns
  put configmaps kube-system coredns
  phase addon/kube-proxy
  put daemonsets kube-system kube-proxy
  put configmaps kube-system kube-proxy
  phase show-join-command
  echo "Your Kubernetes control-plane has initialized successfully! (stand-in)"
  note "init: done"
}

# issue CA NAME CN EKU [SANS]: $K8S/pki/NAME.{crt,key} signed by the CA $K8S/pki/CA.{crt,key}, as
# kubeadm's certs phase makes it (RSA 2048, a year; EKU clientAuth or serverAuth,clientAuth; SANS
# in openssl's form, DNS:x,IP:y).
issue() {
  ca=$K8S/pki/$1 out=$K8S/pki/$2
  if [ ! -s "$ca.crt" ] || [ ! -s "$ca.key" ]; then
    die "failure loading $1 certificate authority: $ca.crt or $ca.key is missing"
  fi
  { echo "extendedKeyUsage=$4"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
    [ -z "${5:-}" ] || echo "subjectAltName=$5"; } > "$out.ext"
  if ! (umask 077 && openssl req -new -newkey rsa:2048 -nodes -keyout "$out.key" -subj "/CN=$3" \
    -out "$out.csr" 2>/dev/null && openssl x509 -req -in "$out.csr" -CA "$ca.crt" -CAkey "$ca.key" \
    -CAcreateserial -days 365 -extfile "$out.ext" -out "$out.crt" 2>/dev/null); then
    die "stand-in: could not issue $2"
  fi
  chmod 0644 "$out.crt"
  rm -f "$out.csr" "$out.ext" "$ca.srl"
}
# issue_etcd_client NAME: etcd/NAME.{crt,key}, CN kube-etcd-NAME, a client of etcd.
issue_etcd_client() { issue etcd/ca "etcd/$1" "kube-etcd-$1" clientAuth; }

# --- static-pods mode (PIBAKE_STAND_IN_MODE=static-pods) ---------------------------------------
# cluster_config: from the ClusterConfiguration every control plane's card holds
# ($K8S/pibake/kubeadm-init.yaml): $cp_endpoint (controlPlaneEndpoint, host:port), $etcd_image,
# $apiserver_image and $cert_sans (apiServer.certSANs, space-separated).
cluster_config() {
  fields=$(python3 - "$K8S/pibake/kubeadm-init.yaml" <<'PY'
import sys, yaml
cc = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if isinstance(d, dict) and d.get("kind") == "ClusterConfiguration")
print(cc.get("controlPlaneEndpoint") or "-", f"{cc['imageRepository']}/etcd:{cc['etcd']['local']['imageTag']}",
      f"{cc['imageRepository']}/kube-apiserver:{cc['kubernetesVersion']}", *((cc.get("apiServer") or {}).get("certSANs") or []))
PY
  ) || die "kubeadm stand-in: no ClusterConfiguration in $K8S/pibake/kubeadm-init.yaml"
  # shellcheck disable=SC2086 # the words python printed
  set -- $fields
  cp_endpoint=$1 etcd_image=$2 apiserver_image=$3
  shift 3
  cert_sans="$*"
}
# san NAME: NAME as a subjectAltName entry (IP: for an IPv4 address, else DNS:).
san() { case "$1" in *[!0-9.]*) echo "DNS:$1" ;; *) echo "IP:$1" ;; esac; }
# control_plane_certs NODE ADDRESS: what kubeadm's certs phase issues for a control plane from the
# shared CAs: the API server's serving certificate (kubernetes names, the node, its address, the
# endpoint, certSANs), its clients of the kubelets and of etcd, and etcd's server and peer
# certificates (the node's name, localhost, its address).
control_plane_certs() {
  sans="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:$1,IP:$2,IP:127.0.0.1"
  for n in "${cp_endpoint%:*}" $cert_sans; do [ "$n" = - ] || sans="$sans,$(san "$n")"; done
  issue ca apiserver kube-apiserver serverAuth "$sans"
  issue ca apiserver-kubelet-client "kube-apiserver-kubelet-client/O=kubeadm:cluster-admins" clientAuth
  issue etcd/ca apiserver-etcd-client kube-apiserver-etcd-client clientAuth
  issue etcd/ca etcd/server "$1" serverAuth,clientAuth "DNS:$1,DNS:localhost,IP:$2,IP:127.0.0.1"
  issue etcd/ca etcd/peer "$1" serverAuth,clientAuth "DNS:$1,DNS:localhost,IP:$2,IP:127.0.0.1"
  [ -s "$K8S/pki/etcd/healthcheck-client.crt" ] || issue_etcd_client healthcheck-client
  issue front-proxy-ca front-proxy-client front-proxy-client clientAuth
}
# kubeconfig FILE: a kubeconfig for the control-plane endpoint with the cluster's CA, 0600, and the
# client certificate kubeadm embeds for FILE's user, issued from the cluster CA (the stand-in API
# server asks for none, but pibake-renew-certs reads their expiry): admin.conf kubernetes-admin in
# kubeadm:cluster-admins, super-admin.conf kubernetes-super-admin in system:masters,
# controller-manager.conf and scheduler.conf their components, kubelet.conf system:node:$node in
# system:nodes (kubeadm's "PKI certificates and requirements").
kubeconfig() {
  case "${1##*/}" in
    admin.conf) subject="kubernetes-admin/O=kubeadm:cluster-admins" ;;
    super-admin.conf) subject="kubernetes-super-admin/O=system:masters" ;;
    controller-manager.conf) subject="system:kube-controller-manager" ;;
    scheduler.conf) subject="system:kube-scheduler" ;;
    kubelet.conf) subject="system:node:$node/O=system:nodes" ;;
    *) die "kubeadm stand-in: no user for $1" ;;
  esac
  issue ca "kubeconfig-client" "$subject" clientAuth
  client_crt=$(base64 -w0 < "$K8S/pki/kubeconfig-client.crt") client_key=$(base64 -w0 < "$K8S/pki/kubeconfig-client.key")
  rm -f "$K8S/pki/kubeconfig-client.crt" "$K8S/pki/kubeconfig-client.key"
  (umask 077 && cat > "$1" <<EOF
# written by the pibake kubeadm stand-in
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 < "$K8S/pki/ca.crt")
    server: https://$cp_endpoint
  name: stand-in
contexts:
- context: {cluster: stand-in, user: stand-in}
  name: stand-in
current-context: stand-in
users:
- name: stand-in
  user:
    client-certificate-data: $client_crt
    client-key-data: $client_key
EOF
  ) && chmod 0600 "$1"
}
# etcd_manifest NODE ADDRESS INITIAL_CLUSTER STATE: kubeadm's etcd.yaml (abridged: its flags and
# volumes). Stand-in only: a longer heartbeat and election timeout, as etcd's tuning guide advises
# for slow machines (a TCG VM is 20-50 times slower than a Pi).
etcd_manifest() {
  mkdir -p "$K8S/manifests" "$ROOT/var/lib/etcd" && chmod 0700 "$ROOT/var/lib/etcd"
  (umask 077 && cat > "$K8S/manifests/etcd.yaml" <<EOF
# written by the pibake kubeadm stand-in (kubeadm's etcd.yaml, abridged)
apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://$2:2379
spec:
  hostNetwork: true
  containers:
  - name: etcd
    image: $etcd_image
    command:
    - etcd
    - --name=$1
    - --data-dir=/var/lib/etcd
    - --advertise-client-urls=https://$2:2379
    - --listen-client-urls=https://127.0.0.1:2379,https://$2:2379
    - --listen-peer-urls=https://$2:2380
    - --initial-advertise-peer-urls=https://$2:2380
    - --initial-cluster=$3
    - --initial-cluster-state=$4
    - --cert-file=/etc/kubernetes/pki/etcd/server.crt
    - --key-file=/etc/kubernetes/pki/etcd/server.key
    - --client-cert-auth=true
    - --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
    - --peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt
    - --peer-key-file=/etc/kubernetes/pki/etcd/peer.key
    - --peer-client-cert-auth=true
    - --peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
    - --snapshot-count=10000
    - --heartbeat-interval=500
    - --election-timeout=5000
    volumeMounts:
    - {mountPath: /var/lib/etcd, name: etcd-data}
    - {mountPath: /etc/kubernetes/pki/etcd, name: etcd-certs}
  volumes:
  - {hostPath: {path: /var/lib/etcd, type: DirectoryOrCreate}, name: etcd-data}
  - {hostPath: {path: /etc/kubernetes/pki/etcd, type: DirectoryOrCreate}, name: etcd-certs}
EOF
  ) || die "[etcd] cannot write $K8S/manifests/etcd.yaml"
}
# apiserver_manifest ADDRESS: kubeadm's kube-apiserver.yaml (abridged: the flags the stand-in API
# server reads).
apiserver_manifest() {
  mkdir -p "$K8S/manifests" || die "[control-plane] cannot create $K8S/manifests"
  (umask 077 && cat > "$K8S/manifests/kube-apiserver.yaml" <<EOF
# written by the pibake kubeadm stand-in (kubeadm's kube-apiserver.yaml, abridged)
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
  annotations:
    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: $1:6443
spec:
  hostNetwork: true
  containers:
  - name: kube-apiserver
    image: $apiserver_image
    command:
    - kube-apiserver
    - --advertise-address=$1
    - --secure-port=6443
    - --etcd-servers=https://127.0.0.1:2379
    - --etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt
    - --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt
    - --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key
    - --tls-cert-file=/etc/kubernetes/pki/apiserver.crt
    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
EOF
  ) || die "[control-plane] cannot write $K8S/manifests/kube-apiserver.yaml"
}
# restart_kubelet: kubeadm's kubelet-start phase restarts the kubelet (static-pods mode: so that it
# runs the manifests; elsewhere the tests' kubelet is a process that sleeps).
restart_kubelet() {
  [ "$MODE" = static-pods ] || return 0
  systemctl restart kubelet.service || die "[kubelet-start] couldn't restart the kubelet"
}
# wait_local_api: kubeadm's wait-control-plane: this node's API server answers /readyz within
# kubeadm's 4 minutes (timeouts.controlPlaneComponentHealthCheck).
wait_local_api() {
  [ "$MODE" = static-pods ] || return 0
  cluster_api=$API cluster_ca=$API_CA
  API=https://127.0.0.1:6443 API_CA=$K8S/pki/ca.crt
  within 240 api_up ||
    die "error execution phase wait-control-plane: the API server at https://127.0.0.1:6443 is not ready: context deadline exceeded"
  note "wait-control-plane: the API server answers after ${waited}s"
  API=$cluster_api API_CA=$cluster_ca
}

# The kubelet's static pods (--pod-manifest-path /etc/kubernetes/manifests): every 10 s each pod whose
# manifest is there runs, and one whose manifest is gone stops. etcd runs in containerd (`ctr run`,
# host network, the manifest's hostPath volumes); the API server is this script's stand-in
# (api_server), a transient systemd unit.
kubelet_static_pods() {
  note "kubelet: running the static pods in $K8S/manifests"
  while :; do
    for pod in etcd kube-apiserver; do
      if grep -q '^kind: Pod' "$K8S/manifests/$pod.yaml" 2>/dev/null; then
        pod_running "$pod" || pod_start "$pod"
      elif pod_running "$pod"; then
        pod_stop "$pod"
      fi
    done
    sleep 10
  done
}
pod_running() {
  if [ "$1" = etcd ]; then
    # The task's process, asked of the kernel (cheap); ctr, a Go program that costs the emulated
    # guests about a second of CPU a call, only when it is not there: a task that is RUNNING
    # without it is one the loop must not start twice.
    pgrep -x etcd >/dev/null 2>&1 && return 0
    ctr --namespace k8s.io tasks ls 2>/dev/null | awk '$1 == "etcd" && $3 == "RUNNING" { f = 1 } END { exit !f }'
  else
    systemctl is-active --quiet "pibake-stand-in-$1.service"
  fi
}
# etcd_container_rm: the etcd container and its task gone (the snapshot goes with the container).
etcd_container_rm() {
  ctr --namespace k8s.io tasks rm --force etcd
  ctr --namespace k8s.io containers rm etcd
}
pod_stop() {
  if [ "$1" = etcd ]; then
    ctr --namespace k8s.io tasks kill --signal SIGKILL etcd
    sleep 2
    etcd_container_rm
  else
    systemctl stop "pibake-stand-in-$1.service"
  fi >> "$LOG/kubelet.log" 2>&1
  note "kubelet: stopped static pod $1"
}
pod_start() {
  pod=$1
  spec=$(python3 - "$K8S/manifests/$1.yaml" <<'PY'
import shlex, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
c = d["spec"]["containers"][0]
vols = {v["name"]: v["hostPath"]["path"] for v in d["spec"].get("volumes") or []}
mounts = []
for m in c.get("volumeMounts") or []:
    mounts += ["--mount", "type=bind,src=%s,dst=%s,options=rbind:%s" % (vols[m["name"]], m["mountPath"], "ro" if m.get("readOnly") else "rw")]
print(shlex.join(mounts + [c["image"], d["metadata"]["name"]] + c["command"]))
PY
  ) || { note "kubelet: cannot read $K8S/manifests/$1.yaml"; return 1; }
  if [ "$1" = etcd ]; then
    etcd_container_rm >/dev/null 2>&1
    eval "set -- $spec"
    # The container's output to a file, as the kubelet keeps it under /var/log/pods: a detached
    # task's pipes are read by no one, and etcd blocked once 64 KiB of its log filled them.
    ctr --namespace k8s.io run --detach --net-host --log-uri "file://$LOG/pod-etcd.log" "$@" >> "$LOG/kubelet.log" 2>&1 ||
      { note "kubelet: ctr run etcd failed"; return 1; }
  else
    eval "set -- $spec"
    shift 3  # the image, the pod's name and the command's name
    systemd-run --unit=pibake-stand-in-kube-apiserver.service --collect "$SELF" stand-in-api-server "$@" \
      >> "$LOG/kubelet.log" 2>&1 || { note "kubelet: could not start the API server"; return 1; }
  fi
  note "kubelet: started static pod $pod"
}

# api_server FLAGS...: the stand-in kube-apiserver: HTTPS on --secure-port with --tls-cert-file,
# /readyz (and /livez, /healthz) "ok" while its etcd (--etcd-servers, asked every 3 s) is healthy,
# and the cluster's objects under /stand-in/objects/PATH (GET, PUT, DELETE; GET of DIR/ lists the
# names below it), kept in etcd under /registry/pibake-stand-in/ (through etcd's JSON gateway to
# its v3 API, as a client with kubeadm's apiserver-etcd-client certificate).
api_server() {
  exec python3 -c "$(cat <<'PY'
import base64, http.server, json, os, ssl, sys, threading, time, urllib.error, urllib.request
a = dict(x[2:].split("=", 1) for x in sys.argv[1:] if x.startswith("--") and "=" in x)
# Under PIBAKE_TEST_ROOT (tests/cli/hard_way.sh) the files are below it.
for k in ("etcd-cafile", "etcd-certfile", "etcd-keyfile", "tls-cert-file", "tls-private-key-file"):
    if k in a and a[k].startswith("/"):
        a[k] = os.environ.get("PIBAKE_TEST_ROOT", "") + a[k]
# etcd's JSON gateway to its v3 API (on by default on its client URLs), with kubeadm's
# apiserver-etcd-client certificate: no process per request.
etcd_url = a["etcd-servers"].split(",")[0]
etcd_tls = ssl.create_default_context(cafile=a["etcd-cafile"])
etcd_tls.load_cert_chain(a["etcd-certfile"], a["etcd-keyfile"])
PREFIX = "/registry/pibake-stand-in/"
healthy = [0.0]


def etcd(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(etcd_url + path, data=data, method="GET" if data is None else "POST")
    with urllib.request.urlopen(req, context=etcd_tls, timeout=15) as r:
        return json.loads(r.read() or b"{}")


def b64(b):
    return base64.b64encode(b).decode()


def watch():
    while True:
        try:
            if etcd("/health").get("health") == "true":
                healthy[0] = time.time()
        except Exception:
            pass
        time.sleep(3)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def key(self):
        return (PREFIX + self.path[len("/stand-in/objects/"):]).encode()

    def objects(self, method):
        if not self.path.startswith("/stand-in/objects/"):
            return self.reply(404, b"404 page not found\n")
        k = self.key()
        try:
            if method == "GET" and k.endswith(b"/"):
                end = k[:-1] + bytes([k[-1] + 1])
                kvs = etcd("/v3/kv/range", {"key": b64(k), "range_end": b64(end), "keys_only": True}).get("kvs") or []
                names = sorted({base64.b64decode(kv["key"])[len(k):].split(b"/")[0] for kv in kvs})
                return self.reply(200, b"".join(n + b"\n" for n in names))
            if method == "GET":
                kvs = etcd("/v3/kv/range", {"key": b64(k)}).get("kvs") or []
                if not kvs:
                    return self.reply(404, b"NotFound\n")
                return self.reply(200, base64.b64decode(kvs[0].get("value", "")))
            if method == "PUT":
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                etcd("/v3/kv/put", {"key": b64(k), "value": b64(body)})
            else:
                etcd("/v3/kv/deleterange", {"key": b64(k)})
            return self.reply(200, b"ok\n")
        except (OSError, ValueError) as e:
            return self.reply(503, ("etcd: %s\n" % e).encode())

    def do_GET(self):
        if self.path in ("/readyz", "/livez", "/healthz"):
            if time.time() - healthy[0] < 15:
                return self.reply(200, b"ok")
            return self.reply(500, b"[-]etcd failed: reason withheld\n")
        self.objects("GET")

    def do_PUT(self):
        self.objects("PUT")

    def do_DELETE(self):
        self.objects("DELETE")


threading.Thread(target=watch, daemon=True).start()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(a["tls-cert-file"], a["tls-private-key-file"])
srv = http.server.ThreadingHTTPServer(("0.0.0.0", int(a.get("secure-port", "6443"))), Handler)
srv.daemon_threads = True
srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
print("stand-in kube-apiserver on :%s, etcd at %s" % (a.get("secure-port", "6443"), etcd_url), flush=True)
srv.serve_forever()
PY
)" "$@"
}

# etcd_endpoints: (static-pods) the cluster's etcd client URLs, comma-separated, as kubeadm's
# etcdutil.NewFromCluster finds them: the etcd pods' kubeadm.kubernetes.io/etcd.advertise-client-urls
# annotation, read through the API server.
etcd_endpoints() {
  store_ls kube-system/pods | grep '^etcd-' | while read -r p; do
    store_get "kube-system/pods/$p" | sed -n 's|^kubeadm.kubernetes.io/etcd.advertise-client-urls=||p'
  done | paste -sd, -
}
# etcd ARGS...: etcdctl against the cluster's etcd, as kubeadm's etcd client does (its
# healthcheck-client certificate here).
etcd() {
  [ -n "${PIBAKE_STAND_IN_ETCD:-}" ] || die "stand-in: PIBAKE_STAND_IN_ETCD names no etcd"
  ETCDCTL_API=3 etcdctl --endpoints "$PIBAKE_STAND_IN_ETCD" --dial-timeout 5s --command-timeout 15s \
    --cacert "$K8S/pki/etcd/ca.crt" --cert "$K8S/pki/etcd/healthcheck-client.crt" \
    --key "$K8S/pki/etcd/healthcheck-client.key" "$@"
}

# etcd_join_learner: kubeadm's etcd-join phase with EtcdLearnerMode (on by default since v1.32):
# this node is added as a learner, its etcd manifest names the members `member add` printed
# (ETCD_INITIAL_CLUSTER) with --initial-cluster-state=existing, and once the learner has caught up
# it is promoted (etcd refuses until then; kubeadm retries for up to its etcd timeout).
etcd_join_learner() {
  # kubeadm's addMember retries a refused add until timeouts.etcdAPICall (2 min by default): etcd
  # takes one learner at a time ("too many learner members in cluster" while another control plane
  # is still catching up). kubeadm asks every 500 ms; the stand-in every 5 s (etcdctl is a process).
  within 120 learner_add || die "error execution phase etcd-join: $(tail -n 1 "$LOG/etcd.log")"
  cat "$LOG/etcd-add.out" >> "$LOG/etcd.log"
  id=$(sed -n 's/^Member  *\([0-9a-f]*\) added.*/\1/p' "$LOG/etcd-add.out")
  initial=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' "$LOG/etcd-add.out")
  if [ -z "$id" ] || [ -z "$initial" ]; then
    die "error execution phase etcd-join: etcdctl member add printed no member and cluster"
  fi
  etcd_manifest "$node" "$address" "$initial" existing
  within 600 learner_promote "$id" ||
    die "error execution phase etcd-join: the learner $id was not promoted: $(tail -n 1 "$LOG/etcd.log")"
  note "etcd-join: learner $id promoted after ${waited}s"
}
# learner_add, learner_promote ID: one try of etcd-join's add and promote (run through within).
# shellcheck disable=SC2317 # called through within
learner_add() { etcd member add "$node" --learner --peer-urls "https://$address:2380" > "$LOG/etcd-add.out" 2>> "$LOG/etcd.log"; }
# shellcheck disable=SC2317 # called through within
learner_promote() { etcd member promote "$1" >> "$LOG/etcd.log" 2>&1; }

kubeadm_join() {
  read_config "$@"
  op="join"
  call=$(count join)
  phase preflight
  [ -r "$config" ] || die "kubeadm stand-in: no readable --config"
  docs=$(yaml_docs "$config") || die "kubeadm stand-in: the config does not parse"
  echo "$docs" | grep -q "^kubeadm.k8s.io/v1beta4 JoinConfiguration " || die "kubeadm stand-in: no JoinConfiguration in $config"
  fields=$(python3 - "$config" <<'PY'
import sys, yaml
j = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if isinstance(d, dict) and d.get("kind") == "JoinConfiguration")
cp = j.get("controlPlane") or {}
print(j["discovery"]["file"]["kubeConfigPath"], j["nodeRegistration"]["name"], cp["localAPIEndpoint"]["advertiseAddress"],
      "yes" if cp.get("certificateKey") else "no")
PY
  ) || die "kubeadm stand-in: $config lacks discovery.file, nodeRegistration.name or controlPlane.localAPIEndpoint"
  # shellcheck disable=SC2086 # the four words python printed
  set -- $fields
  discovery=$ROOT$1 node=$2 address=$3
  # A certificate key makes kubeadm download the CAs from the kubeadm-certs Secret, which no one
  # uploaded (pibake places them on the card instead).
  [ "$4" = no ] || die "error execution phase control-plane-prepare/download-certs: secrets \"kubeadm-certs\" not found"
  cp "$config" "$LOG/kubeadm-join.yaml"
  grep -q 'client-certificate-data: ' "$discovery" 2>/dev/null ||
    die "could not find authentication credentials for the TLS bootstrap process (discovery file $discovery, no token)"
  use_kubeconfig "$discovery"
  api_up || die "[discovery] Failed to request cluster-info, will try again: connection refused"
  [ ! -e "$K8S/kubelet.conf" ] || die "[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: $K8S/kubelet.conf already exists"
  preflight_node
  # No certificateKey: kubeadm checks the shared certificates are on disk (certs.SharedCertificateExists).
  for f in ca.crt ca.key sa.key sa.pub front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key; do
    [ -s "$K8S/pki/$f" ] || die "error execution phase preflight: One or more conditions for hosting a new control plane instance is not satisfied. failure loading $K8S/pki/$f"
  done
  # The control plane's images, from the cluster's ClusterConfiguration (the same on every control
  # plane: this node's kubeadm-init.yaml holds it).
  preflight_images "$K8S/pibake/kubeadm-init.yaml"
  phase control-plane-prepare
  if [ "$MODE" = static-pods ]; then
    cluster_config
    [ "$cp_endpoint" != - ] || cp_endpoint=${API#https://}
    control_plane_certs "$node" "$address"
    for c in admin controller-manager scheduler; do kubeconfig "$K8S/$c.conf"; done
    apiserver_manifest "$address"
    PIBAKE_STAND_IN_ETCD=${PIBAKE_STAND_IN_ETCD:-$(etcd_endpoints)}
  else
    for c in apiserver apiserver-kubelet-client front-proxy-client apiserver-etcd-client etcd/server etcd/peer; do
      write 0644 "$K8S/pki/$c.crt"
      write 0600 "$K8S/pki/$c.key"
    done
    [ -s "$K8S/pki/etcd/healthcheck-client.crt" ] || issue_etcd_client healthcheck-client
    for c in admin controller-manager scheduler; do write 0600 "$K8S/$c.conf"; done
    write 0600 "$K8S/manifests/kube-apiserver.yaml"
  fi
  for m in kube-controller-manager kube-scheduler; do write 0600 "$K8S/manifests/$m.yaml"; done
  phase check-etcd
  # kubeadm probes the endpoint of every etcd pod (etcdutil.NewFromCluster): a pod left by this
  # node's earlier card names this node's address, where no etcd answers yet.
  rc=0
  store_get "kube-system/pods/etcd-$node" >/dev/null || rc=$?
  case $rc in
    0) die "error execution phase check-etcd: etcd cluster is not healthy: failed to dial endpoint https://$address:2379 with maintenance client: context deadline exceeded" ;;
    1) ;;
    *) die "error execution phase check-etcd: could not get the etcd pods from the API server" ;;
  esac
  etcd endpoint health --cluster >> "$LOG/etcd.log" 2>&1 ||
    die "error execution phase check-etcd: etcd cluster is not healthy: $(tail -n 1 "$LOG/etcd.log")"
  phase kubelet-start
  write 0600 "$K8S/bootstrap-kubelet.conf"
  write 0644 "$ROOT/var/lib/kubelet/config.yaml"
  write 0644 "$ROOT/var/lib/kubelet/kubeadm-flags.env"
  restart_kubelet
  phase etcd-join
  if [ "$MODE" = static-pods ]; then
    etcd_join_learner
  else
    etcd member add "$node" --peer-urls "https://$address:2380" >> "$LOG/etcd.log" 2>&1 ||
      die "error execution phase etcd-join: $(tail -n 1 "$LOG/etcd.log")"
    write 0600 "$K8S/manifests/etcd.yaml"
    mkdir -p "$ROOT/var/lib/etcd/member" && chmod 0700 "$ROOT/var/lib/etcd"
  fi
  phase kubelet-wait-bootstrap
  rm -f "$K8S/bootstrap-kubelet.conf"
  if [ "$MODE" = static-pods ]; then kubeconfig "$K8S/kubelet.conf"; else write 0600 "$K8S/kubelet.conf"; fi
  put nodes "" "$node"
  phase mark-control-plane
  put nodes "" "$node" "node-role.kubernetes.io/control-plane="
  phase wait-control-plane
  wait_local_api
  put pods kube-system "etcd-$node" "kubeadm.kubernetes.io/etcd.advertise-client-urls=https://$address:2379"
  echo "This node has joined the cluster and a new control plane instance was created (stand-in)"
  note "join: done"
}

kubeadm_reset() {
  if [ "$MODE" = static-pods ]; then
    # kubeadm reset's remove-etcd-member phase (when its etcd answers), then the static pods stop.
    name=$(sed -n 's/^    - --name=//p' "$K8S/manifests/etcd.yaml" 2>/dev/null)
    if [ -n "$name" ] && [ -s "$K8S/pki/etcd/healthcheck-client.crt" ]; then
      id=$(PIBAKE_STAND_IN_ETCD=https://127.0.0.1:2379 etcd member list 2>/dev/null | awk -F', ' -v n="$name" '$3 == n { print $1 }')
      if [ -n "$id" ] && PIBAKE_STAND_IN_ETCD=https://127.0.0.1:2379 etcd member remove "$id" >> "$LOG/etcd.log" 2>&1; then
        note "reset: removed etcd member $id ($name)"
      fi
    fi
    rm -f "$K8S/manifests"/*
    for pod in etcd kube-apiserver; do if pod_running "$pod"; then pod_stop "$pod"; fi; done
  fi
  rm -rf "$K8S/manifests"/* "$ROOT/var/lib/etcd"/* "$ROOT/var/lib/kubelet"/* "$K8S/pki"/*
  for c in admin super-admin kubelet bootstrap-kubelet controller-manager scheduler; do rm -f "$K8S/$c.conf"; done
  note "reset: done"
}

kubectl_main() {
  ns=default
  selector=""
  output=""
  args=""
  file=""
  raw=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --kubeconfig) kubeconfig=$2; shift ;;
      --kubeconfig=*) kubeconfig=${1#*=} ;;
      -n | --namespace) ns=$2; shift ;;
      --namespace=*) ns=${1#*=} ;;
      -f | --filename) file=$2; shift ;;
      --raw) raw=$2; shift ;;
      --raw=*) raw=${1#*=} ;;
      -l | --selector) selector=$2; shift ;;
      -o) output=$2; shift ;;
      --request-timeout=* | --overwrite | --ignore-not-found) ;;
      *) args="$args $1" ;;
    esac
    shift
  done
  # shellcheck disable=SC2086 # word splitting of the collected arguments is wanted
  set -- $args
  [ "$1" = version ] && { echo "kubectl stand-in (pibake)"; return 0; }
  [ -r "${kubeconfig:-}" ] || die "error: stat ${kubeconfig:-}: no such file or directory"
  use_kubeconfig "$kubeconfig"
  api_up || die "The connection to the server ${API#https://} was refused - did you specify the right host or port?"
  case "$1" in
    get)
      [ -z "$raw" ] || { echo ok; return 0; }
      shift
      # `get nodes -l KEY -o name`: the nodes carrying label KEY (any value), as node/NAME.
      if [ -n "$selector" ]; then
        if [ "$1" != nodes ] || [ "$output" != name ]; then
          die "kubectl stand-in: only 'get nodes -l KEY -o name' takes a selector"
        fi
        names=$(store_ls nodes) || die "Error from server (ServiceUnavailable): the server is currently unable to handle the request (get nodes)"
        for n in $names; do
          labels=$(store_get "nodes/$n") || fail_get $? nodes "$n"
          if echo "$labels" | grep -q "^$selector="; then echo "node/$n"; fi
        done
        return 0
      fi
      # `get TYPE/NAME...`, or `get TYPE NAME...` (kubectl takes both).
      type=""
      case "$1" in */*) ;; *) type=$1; shift ;; esac
      for o in "$@"; do
        [ -z "$type" ] || o=$type/$o
        kind=$(resource "${o%%/*}") obj=${o#*/}
        case "$kind" in nodes | clusterrolebindings) dir="$kind" ;; *) dir="$ns/$kind" ;; esac
        store_get "$dir/$obj" >/dev/null || fail_get $? "$kind" "$obj"
        echo "$o"
      done
      ;;
    apply)
      m=$(fault_for apply "$(count apply)")
      [ -z "$m" ] || hit "$m" "kubectl apply"
      # -f DIR: the directory's .json, .yaml and .yml files, in name order, not its subdirectories
      # (kubectl's FilenameOptions without --recursive).
      [ -n "$file" ] || die "error: must specify one of -f and -k"
      files=$file
      if [ -d "$file" ]; then
        files=$(find "$file" -maxdepth 1 -type f \( -name '*.json' -o -name '*.yaml' -o -name '*.yml' \) | LC_ALL=C sort)
        [ -n "$files" ] || die "error: no objects passed to apply"
      fi
      for f in $files; do
        if [ ! -f "$f" ] || [ ! -r "$f" ]; then die "error: the path \"$f\" does not exist"; fi
        docs=$(yaml_docs "$f") || die "error: error parsing $f"
        if echo "$docs" | grep -q -- '^- \|^[^ ]* - \| -$'; then
          die "error: a document in $f lacks apiVersion, kind or metadata.name"
        fi
        # An object the cluster did not take fails the apply, as kubectl exits 1 on a server error.
        echo "$docs" | while read -r _ kind obj; do
          put "$kind" applied "$obj" || exit 1
          echo "$kind/$obj created"
        done || die "error: $f: the server did not take every object"
      done
      note "apply: done"
      ;;
    delete)
      # `delete KIND NAME --ignore-not-found`: the object is gone afterwards.
      store_del "$ns/$(resource "$2")/$3" || die "Unable to connect to the server"
      echo "$2 \"$3\" deleted"
      ;;
    label)
      m=$(fault_for label "$(count label)")
      [ -z "$m" ] || hit "$m" "kubectl label"
      [ "$2" = node ] || die "kubectl stand-in: only 'label node' is supported"
      # A node that has not registered cannot be labelled (kubectl: NotFound). Checked where the
      # nodes register in one cluster store (hard-way: the kubelets through the API server); the
      # files mode keeps a store per machine, where the workers' Node objects never reach node-1.
      # A server that does not answer fails the label, never drops the node's other labels.
      rc=0
      labels=$(store_get "nodes/$3") || rc=$?
      if [ "$rc" != 0 ] && { [ "$rc" != 1 ] || [ "$MODE" = hard-way ]; }; then fail_get "$rc" nodes "$3"; fi
      # --overwrite: the label replaces one with the same key.
      labels=$({ echo "$labels" | grep -v -e "^${4%%=*}=" -e '^$' || true; echo "$4"; })
      store_put "nodes/$3" "$labels" && echo "node/$3 labeled"
      ;;
    *) die "kubectl stand-in: unsupported: $*" ;;
  esac
}

# kubelet_register ARGS... (hard-way, on a node): the kubelet's node registration (--register-node,
# on by default): once the API server its --kubeconfig names answers, the Node object named by the
# host's name (the kubelet's default node name) is created unless it exists; until then it asks
# every 10 s, as the kubelet retries.
kubelet_register() {
  kc=""
  for a in "$@"; do case "$a" in --kubeconfig=*) kc=${a#*=} ;; esac; done
  [ -n "$kc" ] || die "kubelet stand-in: no --kubeconfig to register with"
  use_kubeconfig "$kc"
  node=$(hostname)
  # Created only when the GET said NotFound: a GET the server failed is asked again, as the kubelet
  # never replaces a Node (and its labels) it could not read.
  until api_up && {
    rc=0
    store_get "nodes/$node" >/dev/null || rc=$?
    [ "$rc" = 0 ] || { [ "$rc" = 1 ] && store_put "nodes/$node" ""; }
  }; do sleep 10; done
  note "kubelet: node $node registered with $API"
}

# hard_way_component NAME ARGS... (PIBAKE_STAND_IN_MODE=hard-way; kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy, kubelet): what the real binary reads at
# start, checked before it "runs" (issue 14 item 5). Flags are taken in their --flag=value form.
#   - every file a flag names (a flag whose name ends in file, certfile, keyfile, cafile,
#     kubeconfig, config, certificate-authority, client-certificate or client-key) exists and can
#     be read: else the component's start-up error, "open PATH: no such file or directory";
#   - each certificate chains (openssl verify) to the CA named beside it, and is the public half of
#     the key named beside it: kube-apiserver's serving, etcd-client, kubelet-client and front-proxy
#     client pairs, the service-account key pair; kube-controller-manager's signing pair; the
#     kubelet's serving certificate against its clientCAFile;
#   - each kubeconfig (a flag, or named in a --config file) parses, its current context names a
#     cluster with an https server and a user whose client certificate chains to that cluster's CA
#     and matches its key;
#   - a --config file parses and is the component's kind (KubeletConfiguration, KubeProxyConfiguration,
#     KubeSchedulerConfiguration), and the files it names are checked as above; kube-apiserver's
#     --encryption-provider-config is an EncryptionConfiguration whose secretbox keys are 32 bytes.
# Under PIBAKE_TEST_ROOT every absolute path is taken below it (tests/cli/hard_way.sh). On success
# it notes what it checked in the call log; kube-apiserver then serves (api_server, its TLS and etcd
# flags), the kubelet registers its node (kubelet_register), and they all stay running. The stand-in
# API server asks its clients for no certificate: who a client is (RBAC) is not checked.
hard_way_component() {
  component=$1
  shift
  summary=$(python3 - "$component" "$@" 2> "$LOG/$component.refused" <<'PY'
import base64, os, re, subprocess, sys, tempfile
import yaml

name, args = sys.argv[1], sys.argv[2:]
root = os.environ.get("PIBAKE_TEST_ROOT", "")
flags = {}
for a in args:
    if a.startswith("--") and "=" in a:
        k, v = a[2:].split("=", 1)
        flags[k] = v
counts = {"files": 0, "chains": 0, "pairs": 0, "kubeconfigs": 0}
FILE_FLAG = re.compile(r"(file|certfile|keyfile|cafile|kubeconfig|config|certificate-authority|client-certificate|client-key)$")


def fail(msg):
    sys.exit("%s: %s" % (name, msg))


def real(path):
    return root + path if root and path.startswith("/") else path


def readable(path, what):
    p = real(path)
    if not os.path.isfile(p) or not os.access(p, os.R_OK):
        fail("%s: open %s: no such file or directory" % (what, path))
    counts["files"] += 1
    return p


def openssl(*argv):
    r = subprocess.run(["openssl", *argv], capture_output=True)
    return r.returncode, r.stdout


def chains(cert, ca, what):
    rc, out = openssl("verify", "-CAfile", ca, cert)
    if rc != 0:
        fail("%s: %s does not chain to %s: %s" % (what, cert, ca, out.decode(errors="replace").strip()))
    counts["chains"] += 1


def pubkey_of_cert(cert):
    return openssl("x509", "-noout", "-pubkey", "-in", cert)[1]


def pubkey_of_key(key, public=False):
    return openssl("pkey", *(["-pubin"] if public else []), "-pubout", "-in", key)[1]


def pair(cert, key, what):
    a = pubkey_of_cert(cert)
    if not a or a != pubkey_of_key(key):
        fail("%s: %s is not the certificate of %s" % (what, cert, key))
    counts["pairs"] += 1


def cert_key_ca(crt, key, ca, what):
    """crt is key's certificate and, when ca is given, chains to it (paths as read)."""
    pair(crt, key, what)
    if ca:
        chains(crt, ca, what)


def temp_pem(data):
    f = tempfile.NamedTemporaryFile("wb", delete=False, suffix=".pem")
    f.write(data)
    f.close()
    return f.name


checked_kubeconfigs = set()


def kubeconfig(path, what):
    p = readable(path, what)
    if p in checked_kubeconfigs:  # one file named by several flags is checked once
        return
    checked_kubeconfigs.add(p)
    try:
        c = yaml.safe_load(open(p))
        ctx = next(x["context"] for x in c["contexts"] if x["name"] == c["current-context"])
        cluster = next(x["cluster"] for x in c["clusters"] if x["name"] == ctx["cluster"])
        user = next(x["user"] for x in c["users"] if x["name"] == ctx["user"])
    except Exception as e:  # a kubeconfig that does not hold together is the component's load error
        fail("%s: invalid configuration: %s: %r" % (what, path, e))
    if not str(cluster.get("server", "")).startswith("https://"):
        fail("%s: %s: the server is not https: %r" % (what, path, cluster.get("server")))
    tmp = []

    def material(d, field):
        if d.get(field + "-data"):
            tmp.append(temp_pem(base64.b64decode(d[field + "-data"])))
            return tmp[-1]
        if d.get(field):
            return readable(d[field], "%s (%s)" % (what, field))
        fail("%s: %s has no %s" % (what, path, field))

    try:
        ca = material(cluster, "certificate-authority")
        crt = material(user, "client-certificate")
        key = material(user, "client-key")
        cert_key_ca(crt, key, ca, "%s (%s)" % (what, path))
    finally:
        for t in tmp:
            os.unlink(t)
    counts["kubeconfigs"] += 1


def config_file(path, kind):
    p = readable(path, "--config")
    try:
        d = yaml.safe_load(open(p))
    except yaml.YAMLError as e:
        fail("--config: %s does not parse: %s" % (path, e))
    if not isinstance(d, dict) or d.get("kind") != kind:
        fail("--config: %s is not a %s" % (path, kind))
    return d


for k, v in flags.items():
    if FILE_FLAG.search(k) and v.startswith("/"):
        if k.endswith("kubeconfig"):
            kubeconfig(v, "--" + k)
        else:
            readable(v, "--" + k)


def f(k):
    return real(flags[k]) if k in flags else None


def check_pairs(rows):
    for crt, key, ca in rows:
        if crt not in flags:
            continue
        for other in (key, ca):
            if other and other not in flags:
                fail("--%s is given without --%s" % (crt, other))
        cert_key_ca(f(crt), f(key), f(ca) if ca else None, "--" + crt)


if name == "kube-apiserver":
    check_pairs([("tls-cert-file", "tls-private-key-file", "client-ca-file"),
                 ("etcd-certfile", "etcd-keyfile", "etcd-cafile"),
                 ("kubelet-client-certificate", "kubelet-client-key", "client-ca-file"),
                 ("proxy-client-cert-file", "proxy-client-key-file", "requestheader-client-ca-file")])
    if "service-account-key-file" in flags and "service-account-signing-key-file" in flags:
        if pubkey_of_key(f("service-account-key-file"), public=True) != pubkey_of_key(f("service-account-signing-key-file")):
            fail("--service-account-key-file is not the public half of --service-account-signing-key-file")
        counts["pairs"] += 1
    if "encryption-provider-config" in flags:
        e = yaml.safe_load(open(f("encryption-provider-config")))
        if not isinstance(e, dict) or e.get("kind") != "EncryptionConfiguration":
            fail("--encryption-provider-config: not an EncryptionConfiguration")
        for r in e.get("resources") or []:
            for prov in r.get("providers") or []:
                for key in (prov.get("secretbox") or {}).get("keys") or []:
                    if len(base64.b64decode(key["secret"])) != 32:
                        fail("--encryption-provider-config: secretbox key %s is not 32 bytes" % key.get("name"))
elif name == "kube-controller-manager":
    check_pairs([("cluster-signing-cert-file", "cluster-signing-key-file", None)])
elif name == "kubelet":
    if "config" in flags:
        c = config_file(flags["config"], "KubeletConfiguration")
        x509 = ((c.get("authentication") or {}).get("x509") or {}).get("clientCAFile")
        crt, key = c.get("tlsCertFile"), c.get("tlsPrivateKeyFile")
        if crt:
            cert_key_ca(readable(crt, "tlsCertFile"), readable(key or "", "tlsPrivateKeyFile"),
                        readable(x509, "clientCAFile") if x509 else None, "tlsCertFile")
elif name in ("kube-proxy", "kube-scheduler"):
    if "config" in flags:
        kind = "KubeProxyConfiguration" if name == "kube-proxy" else "KubeSchedulerConfiguration"
        c = config_file(flags["config"], kind)
        kc = (c.get("clientConnection") or {}).get("kubeconfig")
        if not kc:
            fail("--config: %s names no clientConnection.kubeconfig" % flags["config"])
        kubeconfig(kc, "clientConnection.kubeconfig")
print("%(files)d files named in its flags read, %(kubeconfigs)d kubeconfigs, %(chains)d chains, %(pairs)d key pairs checked" % counts)
PY
  ) || die "$(cat "$LOG/$component.refused")"
  rm -f "$LOG/$component.refused"
  note "$component: $summary"
}
case "$name ${1:-}" in
  "k8s-stand-in.sh yaml-docs")
    yaml_docs "$2" || exit 1
    ;;
  "kubeadm init")
    if [ "${2:-} ${3:-} ${4:-}" = "phase certs etcd-healthcheck-client" ]; then
      issue_etcd_client healthcheck-client
      note "init phase certs etcd-healthcheck-client: done"
    else
      shift
      kubeadm_init "$@"
    fi
    ;;
  "kubeadm reset")
    kubeadm_reset
    ;;
  "kubeadm join")
    shift
    kubeadm_join "$@"
    ;;
  "kubectl "*)
    kubectl_main "$@"
    ;;
  "kubelet stand-in-api-server")
    shift
    api_server "$@"
    ;;
  "kubelet "*)
    if [ "$MODE" = hard-way ]; then
      hard_way_component kubelet "$@"
      # On a node only: under PIBAKE_TEST_ROOT (tests/cli/hard_way.sh) no API server answers at
      # the address kubelet.conf names.
      [ -n "$ROOT" ] || kubelet_register "$@"
    fi
    [ "$MODE" != static-pods ] || kubelet_static_pods
    exec sleep infinity
    ;;
  "kube-"*" --version")
    echo "$name stand-in (pibake e2e)"
    ;;
  "kube-apiserver "*)
    hard_way_component kube-apiserver "$@"
    api_server "$@"
    ;;
  "kube-controller-manager "* | "kube-scheduler "* | "kube-proxy "*)
    hard_way_component "$name" "$@"
    exec sleep infinity
    ;;
  *" version")
    echo "$name stand-in (pibake e2e)"
    ;;
esac
exit 0
