// pibake's command line: parses the commands and flags, runs the pipeline, and is the one place
// that catches errors (docs/conventions.md, "Exceptions inside, one catch in main"): "pibake: error: ..." and a
// non-zero exit status.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "pipeline/build.h"
#include "pipeline/flash.h"
#include "pipeline/inspect.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

void add_spec_flags(CLI::App* cmd, pibake::SpecOptions& spec) {
  cmd->add_option("-c,--config", spec.config_path,
                  "cluster spec (default: ./cluster.yaml when present, else built-in defaults)");
  cmd->add_option("--nodes", spec.nodes,
                  "number of nodes (node-1 … node-N; node-1 is the gateway, node-1 … node-K the control planes, K = "
                  "nodes.control_planes, 1 by default)")
      ->check(CLI::Range(1, 65534));
}

// Prints --help or --version (CLI11 writes to std::cout) and fails when that output was lost.
int help_exit(CLI::App& app, const CLI::Error& e) {
  int rc = app.exit(e);
  if (!std::cout.flush()) {
    pibake::print_stderr("pibake: error: cannot write to standard output\n");
    return kExitError;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  pibake::install_interrupt_cleanup();
  // A reader that goes away (`pibake build | head`) is a write error on stdout, reported and
  // cleaned up like any other, not a SIGPIPE that kills the build half-way.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{
      "pibake turns one stock Ubuntu arm64 Raspberry Pi image into one SD-card image per node of a\n"
      "Kubernetes cluster. Flash the cards, power on the stack, and the cluster forms by itself.\n\n"
      "Start with `pibake build --nodes 4 --base-image ubuntu-raspi.img`, or `pibake init` to\n"
      "write a commented cluster.yaml first.",
      "pibake"};
  app.set_version_flag("--version", std::string("pibake ") + PIBAKE_VERSION);
  app.require_subcommand(1);

  std::string init_path = "cluster.yaml";
  CLI::App* init = app.add_subcommand("init", "write a commented cluster.yaml with the defaults (never overwrites)");
  init->add_option("-c,--config", init_path, "where to write it")->capture_default_str();

  pibake::BuildOptions build_opts;
  CLI::App* build = app.add_subcommand("build", "write one SD-card image per node into the output directory");
  add_spec_flags(build, build_opts.spec);
  build->add_option("--node", build_opts.only_nodes, "regenerate only this node (repeatable)");
  build->add_option("--out", build_opts.out_dir, "output directory")->capture_default_str();
  build->add_option("--base-image", build_opts.base_image,
                    "base image: a path or URL to an Ubuntu raspi .img or .img.xz (overrides the spec)");
  build->add_flag("--offline", build_opts.offline, "never use the network");
  build->add_flag("--dry-run", build_opts.dry_run, "print the plan (every file of every node) and write nothing");
  build->add_option("-j,--jobs", build_opts.jobs, "images written at once (default: four per CPU core, at most 16)");
  build->add_option("--etcd-snapshot", build_opts.etcd_snapshot,
                    "restore this etcd snapshot (etcdctl snapshot save) before kubeadm init on the card that inits");
  std::string compress = "none";
  build->add_option("--compress", compress, "also write node-N.img.zst or .img.xz (+ .sha256), multi-threaded")
      ->check(CLI::IsMember({"none", "zstd", "xz"}));

  CLI::App* fetch = app.add_subcommand("fetch", "fill the download cache for the spec, for a later --offline build");
  pibake::SpecOptions fetch_spec;
  std::string fetch_base;
  add_spec_flags(fetch, fetch_spec);
  fetch->add_option("--base-image", fetch_base, "base image: a path or URL to a raw .img or an .img.xz");
  CLI::App* kubeconfig = app.add_subcommand(
      "kubeconfig", "issue a fresh admin kubeconfig (new 1-year certificate) from the state dir, at any time");
  pibake::SpecOptions kubeconfig_spec;
  std::string kubeconfig_out = "out/admin.kubeconfig";
  kubeconfig->add_option("-c,--config", kubeconfig_spec.config_path,
                         "the cluster's spec; its state dir (pibake-state/ beside it) holds the CA");
  kubeconfig->add_option("-o,--output", kubeconfig_out, "where to write it (0600); - for stdout")
      ->capture_default_str();
  std::string image;
  bool inspect_json = false;
  CLI::App* inspect =
      app.add_subcommand("inspect", "show an image's partitions, node identity, injected files and health");
  inspect->add_option("IMAGE", image, "image file (.img)")->required();
  inspect->add_flag("--json", inspect_json, "print one JSON object instead of text");
  pibake::FlashOptions flash_opts;
  uint64_t max_gib = pibake::kDefaultFlashMaxBytes >> 30;
  CLI::App* flash = app.add_subcommand(
      "flash",
      "write an image's mapped blocks to a card (or a file), or each image of a directory to its own card at once, "
      "then read back and verify");
  std::vector<std::string> flash_targets;
  flash
      ->add_option("IMAGE", flash_opts.image,
                   "image: .img (uses IMAGE.bmap when present), .img.zst or .img.xz; or a directory (out/): "
                   "its *.img files in order, one per DEVICE, all written at once")
      ->required();
  flash
      ->add_option("DEVICE", flash_targets,
                   "target block device, or a regular file (created or truncated); one per image for a directory")
      ->required();
  flash->add_flag("--force", flash_opts.force,
                  "flash a device even if it is mounted, not removable or larger than --max-size");
  flash->add_option("--max-size", max_gib, "refuse devices larger than this many GiB")->capture_default_str();
  flash->add_flag("!--no-verify", flash_opts.verify, "skip the read-back verification");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return help_exit(app, e);
  } catch (const CLI::CallForAllHelp& e) {
    return help_exit(app, e);
  } catch (const CLI::CallForVersion& e) {
    return help_exit(app, e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  int rc = 0;
  try {
    if (*init) pibake::run_init(init_path);
    if (*build) {
      build_opts.compress = pibake::parse_compression(compress);
      pibake::run_build(build_opts);
    }
    if (*fetch) pibake::run_fetch(fetch_spec, fetch_base);
    if (*kubeconfig) pibake::run_kubeconfig(kubeconfig_spec, kubeconfig_out);
    if (*inspect) rc = pibake::run_inspect(image, inspect_json);  // 1 when a health check failed
    if (*flash) {
      flash_opts.max_bytes = max_gib << 30;
      std::error_code ec;
      if (std::filesystem::is_directory(flash_opts.image, ec)) {
        pibake::run_flash_many(flash_opts.image, flash_targets, flash_opts);
      } else if (flash_targets.size() != 1) {
        throw pibake::Error(fmt::format("{} is one image: give one DEVICE (a directory of images takes one per image)",
                                        flash_opts.image));
      } else {
        flash_opts.target = flash_targets[0];
        pibake::run_flash(flash_opts);
      }
    }
  } catch (const pibake::Error& e) {
    std::fflush(stdout);
    pibake::print_stderr(fmt::format("pibake: error: {}\n", e.what()));
    return kExitError;
  } catch (const std::exception& e) {
    // fmt::print throws std::system_error when stdout cannot be written (a full disk, a closed
    // pipe): the user's problem, reported as such rather than as a bug in pibake.
    bool stdout_failed = std::ferror(stdout) != 0;
    std::fflush(stdout);
    pibake::print_stderr(fmt::format(
        "pibake: {}: {}\n", stdout_failed ? "error: cannot write to standard output" : "internal error", e.what()));
    return kExitError;
  }
  // What is still buffered must reach stdout too; a failure there is not success (coreutils'
  // close_stdout does the same).
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    pibake::print_stderr(fmt::format("pibake: error: cannot write to standard output: {}\n", std::strerror(errno)));
    return kExitError;
  }
  return rc;
}
