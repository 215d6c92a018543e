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
#   kubectl get|apply|label   against the stand-in cluster: objects are files under
#                             /var/lib/etcd/pibake-stand-in (so a reset wipes them); the API answers
#                             once wait-control-plane has passed. apply refuses a manifest that does
#                             not parse or whose documents lack apiVersion, kind or metadata.name.
#   kubelet ...               stays running, so kubelet.service is active
#   anything else             exits 0
# It does not start a control plane: the tests check what pibake does, not Kubernetes.
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
# PIBAKE_STAND_IN_ETCD (that cluster's etcd client URLs, comma-separated, for join's etcd phases).
e2e_faults="init:wait-control-plane:fail apply:fail label:fail"
faults=${PIBAKE_STAND_IN_FAULTS-$e2e_faults}
ROOT=${PIBAKE_TEST_ROOT:-}
K8S=$ROOT/etc/kubernetes
STORE=${PIBAKE_STAND_IN_CLUSTER:-$ROOT/var/lib/etcd/pibake-stand-in}
name=${0##*/}
LOG=${PIBAKE_STAND_IN_LOG:-$ROOT/var/log/pibake-e2e}
mkdir -p "$LOG"
echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $name $*" >> "$LOG/calls.log"
note() { echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $name: $*" >> "$LOG/calls.log"; }
die() { echo "$*" >&2; note "$*"; exit 1; }

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
# put KIND NAMESPACE NAME [CONTENT]: an object in the stand-in cluster.
put() {
  r=$(resource "$1")
  mkdir -p "$STORE/$2/$r" && printf '%s\n' "${4:-}" > "$STORE/$2/$r/$3"
}
# The API server answers: this node's own (after its wait-control-plane phase), or the cluster's
# that runs elsewhere.
api_up() {
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
  phase certs
  for c in apiserver apiserver-kubelet-client front-proxy-client apiserver-etcd-client etcd/server etcd/peer \
    etcd/healthcheck-client; do
    write 0644 "$K8S/pki/$c.crt"
    write 0600 "$K8S/pki/$c.key"
  done
  phase kubeconfig
  for c in admin super-admin kubelet controller-manager scheduler; do write 0600 "$K8S/$c.conf"; done
  phase etcd
  write 0600 "$K8S/manifests/etcd.yaml"
  mkdir -p "$ROOT/var/lib/etcd/member" && chmod 0700 "$ROOT/var/lib/etcd"
  phase control-plane
  for m in kube-apiserver kube-controller-manager kube-scheduler; do write 0600 "$K8S/manifests/$m.yaml"; done
  phase kubelet-start
  write 0644 "$ROOT/var/lib/kubelet/config.yaml"
  write 0644 "$ROOT/var/lib/kubelet/kubeadm-flags.env"
  phase wait-control-plane
  mkdir -p "$STORE" && touch "$STORE/apiserver-up"
  node=$(sed -n 's/^  name: *//p' "$config" | head -n 1)
  put nodes "" "${node:-node-1}"
  put pods kube-system "etcd-${node:-node-1}"
  phase upload-config
  put configmaps kube-system kubeadm-config
  put configmaps kube-system kubelet-config
  phase upload-certs
  phase mark-control-plane
  put nodes "" "${node:-node-1}" "node-role.kubernetes.io/control-plane="
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

# issue_etcd_client CN: etcd/CN.{crt,key} signed by the etcd CA in $K8S/pki/etcd, a client
# certificate as kubeadm's certs phase makes it (RSA 2048, clientAuth, a year).
issue_etcd_client() {
  d=$K8S/pki/etcd
  if [ ! -s "$d/ca.crt" ] || [ ! -s "$d/ca.key" ]; then
    die "failure loading etcd/ca certificate authority: $d/ca.crt or ca.key is missing"
  fi
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > "$d/.ext"
  if ! (umask 077 && openssl req -new -newkey rsa:2048 -nodes -keyout "$d/$1.key" -subj "/CN=kube-etcd-$1" \
    -out "$d/.csr" 2>/dev/null && openssl x509 -req -in "$d/.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
    -CAcreateserial -days 365 -extfile "$d/.ext" -out "$d/$1.crt" 2>/dev/null); then
    die "stand-in: could not issue etcd/$1"
  fi
  chmod 0644 "$d/$1.crt"
  rm -f "$d/.csr" "$d/.ext" "$d/ca.srl"
}

# etcd ARGS...: etcdctl against the cluster's etcd, as kubeadm's etcd client does (its
# healthcheck-client certificate here).
etcd() {
  [ -n "${PIBAKE_STAND_IN_ETCD:-}" ] || die "stand-in: PIBAKE_STAND_IN_ETCD names no etcd"
  ETCDCTL_API=3 etcdctl --endpoints "$PIBAKE_STAND_IN_ETCD" --dial-timeout 5s --command-timeout 15s \
    --cacert "$K8S/pki/etcd/ca.crt" --cert "$K8S/pki/etcd/healthcheck-client.crt" \
    --key "$K8S/pki/etcd/healthcheck-client.key" "$@"
}

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
  for c in apiserver apiserver-kubelet-client front-proxy-client apiserver-etcd-client etcd/server etcd/peer; do
    write 0644 "$K8S/pki/$c.crt"
    write 0600 "$K8S/pki/$c.key"
  done
  [ -s "$K8S/pki/etcd/healthcheck-client.crt" ] || issue_etcd_client healthcheck-client
  for c in admin controller-manager scheduler; do write 0600 "$K8S/$c.conf"; done
  for m in kube-apiserver kube-controller-manager kube-scheduler; do write 0600 "$K8S/manifests/$m.yaml"; done
  phase check-etcd
  # kubeadm probes the endpoint of every etcd pod (etcdutil.NewFromCluster): a pod left by this
  # node's earlier card names this node's address, where no etcd answers yet.
  [ ! -e "$STORE/kube-system/pods/etcd-$node" ] ||
    die "error execution phase check-etcd: etcd cluster is not healthy: failed to dial endpoint https://$address:2379 with maintenance client: context deadline exceeded"
  etcd endpoint health --cluster >> "$LOG/etcd.log" 2>&1 ||
    die "error execution phase check-etcd: etcd cluster is not healthy: $(tail -n 1 "$LOG/etcd.log")"
  phase kubelet-start
  write 0600 "$K8S/bootstrap-kubelet.conf"
  write 0644 "$ROOT/var/lib/kubelet/config.yaml"
  write 0644 "$ROOT/var/lib/kubelet/kubeadm-flags.env"
  phase etcd-join
  etcd member add "$node" --peer-urls "https://$address:2380" >> "$LOG/etcd.log" 2>&1 ||
    die "error execution phase etcd-join: $(tail -n 1 "$LOG/etcd.log")"
  write 0600 "$K8S/manifests/etcd.yaml"
  mkdir -p "$ROOT/var/lib/etcd/member" && chmod 0700 "$ROOT/var/lib/etcd"
  phase kubelet-wait-bootstrap
  rm -f "$K8S/bootstrap-kubelet.conf"
  write 0600 "$K8S/kubelet.conf"
  put nodes "" "$node"
  phase mark-control-plane
  put nodes "" "$node" "node-role.kubernetes.io/control-plane="
  phase wait-control-plane
  put pods kube-system "etcd-$node"
  echo "This node has joined the cluster and a new control plane instance was created (stand-in)"
  note "join: done"
}

kubeadm_reset() {
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
  api_up || die "The connection to the server 10.0.0.1:6443 was refused - did you specify the right host or port?"
  case "$1" in
    get)
      [ -z "$raw" ] || { echo ok; return 0; }
      shift
      # `get nodes -l KEY -o name`: the nodes carrying label KEY (any value), as node/NAME.
      if [ -n "$selector" ]; then
        if [ "$1" != nodes ] || [ "$output" != name ]; then
          die "kubectl stand-in: only 'get nodes -l KEY -o name' takes a selector"
        fi
        for f in "$STORE/nodes"/*; do
          [ -e "$f" ] || continue
          if grep -q "^$selector=" "$f"; then echo "node/${f##*/}"; fi
        done
        return 0
      fi
      for o in "$@"; do
        kind=$(resource "${o%%/*}") obj=${o#*/}
        case "$kind" in nodes | clusterrolebindings) dir="$STORE/$kind" ;; *) dir="$STORE/$ns/$kind" ;; esac
        [ -e "$dir/$obj" ] || die "Error from server (NotFound): $kind \"$obj\" not found"
        echo "$o"
      done
      ;;
    apply)
      m=$(fault_for apply "$(count apply)")
      [ -z "$m" ] || hit "$m" "kubectl apply"
      docs=$(yaml_docs "$file") || die "error: error parsing $file"
      if echo "$docs" | grep -q -- '^- \|^[^ ]* - \| -$'; then
        die "error: a document in $file lacks apiVersion, kind or metadata.name"
      fi
      echo "$docs" | while read -r _ kind obj; do put "$kind" applied "$obj" && echo "$kind/$obj created"; done
      note "apply: done"
      ;;
    delete)
      # `delete KIND NAME --ignore-not-found`: the object is gone afterwards.
      rm -f "$STORE/$ns/$(resource "$2")/$3"
      echo "$2 \"$3\" deleted"
      ;;
    label)
      m=$(fault_for label "$(count label)")
      [ -z "$m" ] || hit "$m" "kubectl label"
      [ "$2" = node ] || die "kubectl stand-in: only 'label node' is supported"
      mkdir -p "$STORE/nodes"
      # --overwrite: the label replaces one with the same key.
      { grep -v "^${4%%=*}=" "$STORE/nodes/$3" 2>/dev/null || true; echo "$4"; } > "$STORE/nodes/$3.new"
      mv "$STORE/nodes/$3.new" "$STORE/nodes/$3" && echo "node/$3 labeled"
      ;;
    *) die "kubectl stand-in: unsupported: $*" ;;
  esac
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
  "kubelet "*)
    exec sleep infinity
    ;;
  *" version")
    echo "$name stand-in (pibake e2e)"
    ;;
esac
exit 0
