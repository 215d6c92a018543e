// `pibake build`, `pibake init` and the spec resolution they share: the pipeline's top level.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "spec/spec.h"

namespace pibake {

struct SpecOptions {
  std::string config_path;   // -c/--config; empty = ./cluster.yaml when present, else defaults
  std::optional<int> nodes;  // --nodes N
};

struct BuildOptions {
  SpecOptions spec;
  std::vector<std::string> only_nodes;  // --node NAME (repeatable)
  std::string out_dir = "out";
  std::string base_image;  // --base-image PATH|URL
  bool offline = false;
  bool dry_run = false;
  unsigned jobs = 0;                          // nodes written at once; 0 = four per CPU core, at most 16
  Compression compress = Compression::kNone;  // --compress zstd|xz: also node-N.img.zst/.xz (+ .sha256)
  // --etcd-snapshot FILE: an `etcdctl snapshot save` file the card that runs kubeadm init restores
  // before the init (docs/cluster.md, "etcd snapshots"); the build must include that card.
  std::string etcd_snapshot;
};

// load spec → apply flags → validate. Prints every problem and throws pibake::Error when any.
ClusterSpec resolve_spec(const SpecOptions& opts);

// plan → fetch → prepare base → per node: clone → root partition → boot partition → finalize.
void run_build(const BuildOptions& opts);

// Fills the download cache with everything the spec needs, for a later --offline build.
void run_fetch(const SpecOptions& spec_opts, const std::string& base_image);

// `pibake kubeconfig`: issues a fresh admin kubeconfig from the state dir of the spec's cluster
// (see issue_admin_kubeconfig) and writes it to `output` (0600, atomically; "-" = stdout).
void run_kubeconfig(const SpecOptions& spec_opts, const std::string& output);

// Writes a commented cluster.yaml at `path`; never overwrites.
void run_init(const std::string& path);

}  // namespace pibake
