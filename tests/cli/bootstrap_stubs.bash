# The first-boot bootstrap's test harness, shared by tests/cli/bootstrap.sh and
# tests/cli/control_plane_join.sh (sourced after lib.bash).

# make_bootstrap_stubs: $SCRATCH/bin holding the stubs below and the kubeadm/kubectl stand-in
# (tests/e2e/k8s-stand-in.sh); sets $bin.
make_bootstrap_stubs() {
# Stubs: each records "name args" in calls.log. FAIL_<name>=N makes its first N calls fail,
# FAIL_<name>_<first argument>=N the first N calls with that first argument (`-` is `_`).
# dpkg-query says "installed" only for the packages in $INSTALLED and those the apt-get stub
# installed from .deb files. apt-get install of .deb files, as first boot installs from the card,
# checks what real apt would need and what pibake promises: every file lies in the card's
# /var/cache/pibake/debs and is a .deb (its Package field read with the real dpkg-deb), and
# no source is configured (SourceList /dev/null, no parts dir: nothing may reach the network).
bin=$SCRATCH/bin; mkdir -p "$bin"
for tool in systemctl apt-get dpkg-query dpkg sleep ctr; do
  cat > "$bin/$tool" <<STUB
#!/bin/sh
echo "$tool \$*" >> "$SCRATCH/calls.log"
for key in $tool $tool-\${1:-}; do
  key=\$(echo "\$key" | tr -- '-' '_')
  count_file="$SCRATCH/count-\$key"
  n=\$(cat "\$count_file" 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n > "\$count_file"
  limit=\$(printenv "FAIL_\$key" || echo 0)
  [ "\$n" -gt "\$limit" ] || { echo "$tool stub: fault \$n of \$limit" >&2; exit 1; }
done
case "$tool" in
  # A bootstrap that retries for ever would hang the test: its 100th backoff ends its session.
  sleep) [ "\$n" -lt "\${PIBAKE_SLEEP_LIMIT:-100}" ] || { echo "sleep stub: \$n retries, giving up" >&2; pkill -KILL -s "\$(cut -d' ' -f6 /proc/\$\$/stat)"; } ;;
  apt-get) [ "\$1" = install ] || exit 0
    for a; do
      case \$a in
        *.deb)
          case \$a in "$SCRATCH/root/var/cache/pibake/debs/"*) ;; *) echo "apt-get stub: \$a is not on the card" >&2; exit 1 ;; esac
          case " \$* " in *" -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/nonexistent "*) ;; *) echo "apt-get stub: local .debs with apt's sources configured" >&2; exit 1 ;; esac
          dpkg-deb -f "\$a" Package >> "$SCRATCH/installed" || { echo "apt-get stub: \$a is not a .deb" >&2; exit 1; } ;;
      esac
    done ;;
  # ctr keeps what it imported (the names in each OCI archive's index.json, read with tar and
  # python3) and lists them: the kubeadm stand-in's preflight asks it for the control plane's images.
  ctr) case " \$* " in
      *" images import "*) for a; do f=\$a; done
        tar -xOf "\$f" index.json | python3 -c 'import json, sys
for m in json.load(sys.stdin)["manifests"]:
    a = m.get("annotations", {})
    print(a.get("io.containerd.image.name") or a["org.opencontainers.image.ref.name"])' >> "$SCRATCH/ctr-images" || exit 1 ;;
      *" images ls "*) cat "$SCRATCH/ctr-images" 2>/dev/null ;;
    esac ;;
  dpkg-query) for a; do pkg=\$a; done
    for p in \${INSTALLED:-} \$(cat "$SCRATCH/installed" 2>/dev/null); do [ "\$p" = "\$pkg" ] && { echo "install ok installed"; exit 0; }; done; exit 1 ;;
esac
exit 0
STUB
  chmod +x "$bin/$tool"
done
install -m 0755 "$PIBAKE_SOURCE_DIR/tests/e2e/k8s-stand-in.sh" "$bin/kubeadm"
install -m 0755 "$PIBAKE_SOURCE_DIR/tests/e2e/k8s-stand-in.sh" "$bin/kubectl"
}
