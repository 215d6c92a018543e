#!/bin/sh
# pibake e2e stand-in for kubelet, kubeadm, kubectl and crictl. No arm64 Kubernetes binaries can be
# downloaded on the test machine (no internet), so the QEMU end-to-end test installs this script
# under each of those names, through pibake's normal artifact path. It records every call (time,
# name, arguments) in /var/log/pibake-e2e/calls.log and does the least the bootstrap relies on:
#   kubeadm init --config F   keeps a copy of F (kubeadm-init.yaml), checks pibake's PKI is in
#                             place, writes /etc/kubernetes/admin.conf (as kubeadm does)
#   kubelet ...               stays running, so kubelet.service is active
#   anything else             exits 0
# It does not start a control plane: the test checks what pibake set up, not Kubernetes.
name=${0##*/}
log=/var/log/pibake-e2e
mkdir -p "$log"
echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $name $*" >> "$log/calls.log"
case "$name ${1:-}" in
  "kubeadm init")
    config=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --config) config=$2; shift ;;
        --config=*) config=${1#--config=} ;;
      esac
      shift
    done
    [ -r "$config" ] || { echo "kubeadm stand-in: no readable --config" >&2; exit 1; }
    cp "$config" "$log/kubeadm-init.yaml"
    for f in ca.crt ca.key sa.key sa.pub front-proxy-ca.crt etcd/ca.crt; do
      [ -s "/etc/kubernetes/pki/$f" ] || { echo "kubeadm stand-in: /etc/kubernetes/pki/$f is missing" >&2; exit 1; }
    done
    printf 'apiVersion: v1\nkind: Config\n# written by the pibake e2e kubeadm stand-in\n' > /etc/kubernetes/admin.conf
    chmod 600 /etc/kubernetes/admin.conf
    ;;
  "kubelet "*)
    exec sleep infinity
    ;;
  *" version")
    echo "$name stand-in (pibake e2e)"
    ;;
esac
exit 0
