// The build plan and template rendering: pure functions, tested without any image.
#include "plan/plan.h"

#include <catch2/catch.hpp>
#include <set>

#include "pipeline/base_image.h"
#include "plan/dhcp_server.h"
#include "plan/template.h"
#include "util/error.h"
#include "util/sha256.h"

using namespace pibake;

namespace {
const FileOp* find_op(const NodePlan& n, Fs fs, const std::string& path) {
  for (const FileOp& op : n.ops)
    if (op.fs == fs && op.path == path) return &op;
  return nullptr;
}
}  // namespace

TEST_CASE("templates substitute every {{name}} and refuse unknown ones", "[plan]") {
  TemplateVars vars{{"a", "1"}, {"long_name", "x y"}};
  CHECK(render_template("{{a}}-{{ long_name }}-{{a}}", vars, "t") == "1-x y-1");
  CHECK(render_template("no placeholders {", vars, "t") == "no placeholders {");
  CHECK_THROWS_WITH(render_template("{{missing}}", vars, "t.tmpl"), "template t.tmpl: no value for {{missing}}");
  CHECK_THROWS_WITH(render_template("x {{a", vars, "t.tmpl"), "template t.tmpl: unterminated \"{{\"");
}

TEST_CASE("every node gets its own hostname and cloud-init seed", "[plan]") {
  ClusterSpec spec = default_spec();
  BuildPlan plan = make_plan(spec);
  REQUIRE(plan.nodes.size() == 4);
  std::set<std::string> ids;
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    const NodePlan& n = plan.nodes[i];
    std::string name = "node-" + std::to_string(i + 1);
    CHECK(n.node.name == name);
    CHECK(n.image_file == name + ".img");
    CHECK(n.gateway == (i == 0));
    const FileOp* hostname = find_op(n, Fs::kRoot, "/etc/hostname");
    REQUIRE(hostname != nullptr);
    CHECK(hostname->content == name + "\n");
    CHECK(hostname->mode == 0644);
    const FileOp* user_data = find_op(n, Fs::kBoot, "/user-data");
    REQUIRE(user_data != nullptr);
    CHECK(user_data->content.rfind("#cloud-config\n", 0) == 0);
    CHECK(user_data->content.find("hostname: " + name + "\n") != std::string::npos);
    const FileOp* meta = find_op(n, Fs::kBoot, "/meta-data");
    REQUIRE(meta != nullptr);
    auto pos = meta->content.find("instance-id: ");
    REQUIRE(pos != std::string::npos);
    ids.insert(meta->content.substr(pos, meta->content.find('\n', pos) - pos));
  }
  CHECK(ids.size() == 4);
}

TEST_CASE("the instance-id is stable for the same spec and changes with the seed", "[plan]") {
  ClusterSpec spec = default_spec();
  auto id_of = [](const ClusterSpec& s) {
    return find_op(make_plan(s, {"node-2"}).nodes.at(0), Fs::kBoot, "/meta-data")->content;
  };
  std::string first = id_of(spec);
  CHECK(id_of(spec) == first);
  spec.access.ssh_authorized_keys.push_back("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv me@laptop");
  CHECK(id_of(spec) != first);
}

TEST_CASE("the plan can be restricted to named nodes and an unknown name is an error listing the nodes", "[plan]") {
  ClusterSpec spec = default_spec();
  BuildPlan plan = make_plan(spec, {"node-3"});
  REQUIRE(plan.nodes.size() == 1);
  CHECK(plan.nodes[0].number == 3);
  CHECK_THROWS_WITH(make_plan(spec, {"node-9"}),
                    "no node named \"node-9\" in the spec (nodes: node-1, node-2, node-3, node-4)");
}

TEST_CASE("SSH keys lock the password and switch password SSH off", "[plan]") {
  ClusterSpec spec = default_spec();
  spec.access.ssh_authorized_keys = {"ssh-ed25519 AAAAC3Nza me@laptop"};
  std::string ud = find_op(make_plan(spec).nodes[0], Fs::kBoot, "/user-data")->content;
  CHECK(ud.find("ssh_pwauth: false") != std::string::npos);
  CHECK(ud.find("lock_passwd: true") != std::string::npos);
  CHECK(ud.find("\"ssh-ed25519 AAAAC3Nza me@laptop\"") != std::string::npos);
  CHECK(ud.find("chpasswd") == std::string::npos);
}

TEST_CASE("without keys or a hash Ubuntu's forced password change stays", "[plan]") {
  ClusterSpec spec = default_spec();
  spec.access.ssh_authorized_keys.clear();
  std::string ud = find_op(make_plan(spec).nodes[0], Fs::kBoot, "/user-data")->content;
  CHECK(ud.find("chpasswd:\n  expire: true") != std::string::npos);
  CHECK(ud.find("ssh_pwauth: true") != std::string::npos);
}

TEST_CASE("root space needed counts whole blocks plus one block per file", "[plan]") {
  NodePlan n;
  FileOp a;
  a.content = std::string(5000, 'x');
  n.ops.push_back(a);
  FileOp boot;
  boot.fs = Fs::kBoot;
  boot.content = std::string(100000, 'y');
  n.ops.push_back(boot);
  CHECK(n.root_bytes_needed(4096) == 2 * 4096 + 4096);
  CHECK(n.root_bytes_needed(1024) == 5 * 1024 + 1024);
}

TEST_CASE("describe lists every file of every node", "[plan]") {
  std::string text = describe(make_plan(default_spec(), {"node-1"}));
  CHECK(text.find("node-1 (10.0.0.1, control-plane, gateway): node-1.img") != std::string::npos);
  CHECK(text.find("write writable:/etc/hostname 7 bytes, 0644") != std::string::npos);
  CHECK(text.find("write system-boot:/meta-data") != std::string::npos);
}

TEST_CASE("cmdline.txt gains the cgroup tokens once and keeps every other token", "[plan]") {
  const std::string ubuntu =
      "console=serial0,115200 dwc_otg.lpm_enable=0 console=tty1 root=LABEL=writable rootfstype=ext4 rootwait "
      "fixrtc quiet splash\n";
  std::string once = ensure_cmdline_tokens(ubuntu, "cgroup_enable=memory cgroup_memory=1");
  CHECK(once == ubuntu.substr(0, ubuntu.size() - 1) + " cgroup_enable=memory cgroup_memory=1\n");
  CHECK(ensure_cmdline_tokens(once, "cgroup_enable=memory cgroup_memory=1") == once);
  // Only the first line counts; later lines and a missing newline are handled.
  CHECK(ensure_cmdline_tokens("a b\nsecond line\n", "b c") == "a b c\nsecond line\n");
  CHECK(ensure_cmdline_tokens("a  b  ", "c") == "a  b c\n");
  CHECK(ensure_cmdline_tokens("", "x y") == "x y\n");
  // A different value of the same key is another token: cgroup_enable=cpuset stays, memory is added.
  CHECK(ensure_cmdline_tokens("cgroup_enable=cpuset\n", "cgroup_enable=memory") ==
        "cgroup_enable=cpuset cgroup_enable=memory\n");
}

TEST_CASE("the missing kernel parameters are those the first line lacks, each once, in order", "[plan]") {
  using Tokens = std::vector<std::string>;
  CHECK(missing_cmdline_tokens("root=LABEL=writable cgroup_memory=1 cgroup_enable=memory\n", kMemoryCgroupTokens)
            .empty());
  // Only the first line is read by the firmware, so only it counts.
  CHECK(missing_cmdline_tokens("root=LABEL=writable\ncgroup_enable=memory cgroup_memory=1\n", kMemoryCgroupTokens) ==
        Tokens{"cgroup_enable=memory", "cgroup_memory=1"});
  // Tabs and a DOS line end separate parameters too; a repeated wanted one is reported once.
  CHECK(missing_cmdline_tokens("a\tb\r\nc\n", "b c c a d") == Tokens{"c", "d"});
  // Parameters compare whole: quiet=1 is not quiet.
  CHECK(missing_cmdline_tokens("quiet=1", "quiet") == Tokens{"quiet"});
  CHECK(missing_cmdline_tokens("", "") == Tokens{});
}

TEST_CASE("the gateway gets the uplink, DHCP and NAT, and workers route through it", "[plan]") {
  ClusterSpec spec = default_spec();
  spec.network.uplink.interface = "wlan0";
  spec.network.uplink.wifi = WifiSpec{"home \"net\"", "pass:word", "GB"};
  PlanInputs inputs;
  inputs.cmdline_paths = {"/current/cmdline.txt", "/new/cmdline.txt"};  // Ubuntu 26.04 with an update pending
  BuildPlan plan = make_plan(spec, {}, inputs);
  const NodePlan& gw = plan.nodes[0];
  const NodePlan& worker = plan.nodes[2];
  std::string gw_net = find_op(gw, Fs::kBoot, "/network-config")->content;
  CHECK(gw_net.find("addresses: [10.0.0.1/24]") != std::string::npos);
  CHECK(gw_net.find("  wifis:\n    wlan0:\n      dhcp4: true") != std::string::npos);
  CHECK(gw_net.find("\"home \\\"net\\\"\":\n          password: \"pass:word\"") != std::string::npos);
  CHECK(gw_net.find("regulatory-domain: \"GB\"") != std::string::npos);
  CHECK(gw_net.find("via:") == std::string::npos);
  std::string w_net = find_op(worker, Fs::kBoot, "/network-config")->content;
  CHECK(w_net.find("addresses: [10.0.0.3/24]") != std::string::npos);
  CHECK(w_net.find("- to: default\n          via: 10.0.0.1") != std::string::npos);
  CHECK(w_net.find("wifis") == std::string::npos);

  const FileOp* dhcpd = find_op(gw, Fs::kRoot, "/etc/dhcp/dhcpd.conf");
  REQUIRE(dhcpd != nullptr);
  CHECK(dhcpd->content.find("range 10.0.0.100 10.0.0.200;") != std::string::npos);
  CHECK(dhcpd->content.find("subnet 10.0.0.0 netmask 255.255.255.0 {") != std::string::npos);
  CHECK(dhcpd->content.find("option broadcast-address 10.0.0.255;") != std::string::npos);
  CHECK(find_op(worker, Fs::kRoot, "/etc/dhcp/dhcpd.conf") == nullptr);
  CHECK(find_op(worker, Fs::kRoot, "/usr/local/sbin/pibake-nat") == nullptr);
  const FileOp* nat = find_op(gw, Fs::kRoot, "/usr/local/sbin/pibake-nat");
  REQUIRE(nat != nullptr);
  CHECK(nat->mode == 0755);
  CHECK(nat->content.find("UPLINK=wlan0\n") != std::string::npos);
  const FileOp* enable = find_op(gw, Fs::kRoot, "/etc/systemd/system/multi-user.target.wants/pibake-nat.service");
  REQUIRE(enable != nullptr);
  CHECK(enable->kind == FileOp::Kind::kSymlink);
  CHECK(enable->link_target == "/etc/systemd/system/pibake-nat.service");

  // Every command line of the base's boot layout gets the tokens; no other is planned.
  for (const char* path : {"/current/cmdline.txt", "/new/cmdline.txt"}) {
    REQUIRE(find_op(gw, Fs::kBoot, path) != nullptr);
    CHECK(find_op(gw, Fs::kBoot, path)->kind == FileOp::Kind::kCmdlineTokens);
    CHECK(find_op(gw, Fs::kBoot, path)->cmdline_tokens ==
          "cgroup_enable=memory cgroup_memory=1 cfg80211.ieee80211_regdom=GB");
    CHECK(find_op(worker, Fs::kBoot, path)->cmdline_tokens == "cgroup_enable=memory cgroup_memory=1");
  }
  CHECK(find_op(gw, Fs::kBoot, "/cmdline.txt") == nullptr);
  // Without a known base (--dry-run before fetch) no command line is planned at all.
  for (const FileOp& op : make_plan(spec).nodes[0].ops) CHECK(op.kind != FileOp::Kind::kCmdlineTokens);
}

TEST_CASE("every node starts with a fresh identity whatever the base went through", "[plan]") {
  for (const NodePlan& n : make_plan(default_spec()).nodes) {
    const FileOp* machine_id = find_op(n, Fs::kRoot, "/etc/machine-id");
    REQUIRE(machine_id != nullptr);
    CHECK(machine_id->kind == FileOp::Kind::kWrite);
    CHECK(machine_id->content.empty());
    CHECK(machine_id->mode == 0444);
    const FileOp* dbus = find_op(n, Fs::kRoot, "/var/lib/dbus/machine-id");
    REQUIRE(dbus != nullptr);
    CHECK(dbus->kind == FileOp::Kind::kSymlink);
    CHECK(dbus->link_target == "/etc/machine-id");
    for (const char* gone :
         {"/var/lib/systemd/random-seed", "/var/lib/cloud/instances", "/var/lib/cloud/instance", "/var/lib/cloud/data",
          "/var/lib/cloud/sem", "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key.pub"}) {
      const FileOp* op = find_op(n, Fs::kRoot, gone);
      REQUIRE(op != nullptr);
      CHECK(op->kind == FileOp::Kind::kRemove);
    }
  }
}

TEST_CASE("a Wi-Fi uplink with no network to join is left out of netplan", "[plan]") {
  ClusterSpec spec = default_spec();  // wlan0, network.uplink.wifi unset
  REQUIRE_FALSE(spec.network.uplink.wifi.has_value());
  std::string net = find_op(make_plan(spec).nodes[0], Fs::kBoot, "/network-config")->content;
  CHECK(net.find("wifis") == std::string::npos);
  CHECK(net.find("access-points") == std::string::npos);
  CHECK(net.find("# no uplink: wlan0 has no Wi-Fi network to join") != std::string::npos);
  CHECK(net.find("addresses: [10.0.0.1/24]") != std::string::npos);
}

TEST_CASE("a wired uplink is an ethernet with DHCP and no Wi-Fi settings", "[plan]") {
  ClusterSpec spec = default_spec();
  spec.network.uplink.interface = "eth1";
  spec.network.uplink.wifi.reset();
  const NodePlan gw = make_plan(spec).nodes[0];
  std::string net = find_op(gw, Fs::kBoot, "/network-config")->content;
  CHECK(net.find("    eth1:\n      dhcp4: true\n      optional: true\n") != std::string::npos);
  CHECK(net.find("wifis") == std::string::npos);
  PlanInputs inputs;
  inputs.cmdline_paths = {"/cmdline.txt"};  // Ubuntu 24.04
  CHECK(find_op(make_plan(spec, {}, inputs).nodes[0], Fs::kBoot, "/cmdline.txt")->cmdline_tokens ==
        "cgroup_enable=memory cgroup_memory=1");
  CHECK(find_op(gw, Fs::kRoot, "/usr/local/sbin/pibake-nat")->content.find("UPLINK=eth1\n") != std::string::npos);
}

TEST_CASE("/etc/hosts lists every node on every node", "[plan]") {
  ClusterSpec spec = default_spec();
  for (const NodePlan& n : make_plan(spec).nodes) {
    std::string hosts = find_op(n, Fs::kRoot, "/etc/hosts")->content;
    for (int k = 1; k <= 4; ++k) {
      std::string line = "10.0.0." + std::to_string(k) + " node-" + std::to_string(k) + ".cluster.home node-" +
                         std::to_string(k) + "\n";
      CHECK(hosts.find(line) != std::string::npos);
    }
    CHECK(hosts.find("127.0.0.1 localhost\n") != std::string::npos);
  }
}

TEST_CASE("node.json records no digest of a secret file", "[plan]") {
  ClusterSpec spec = default_spec();
  PlanInputs inputs;
  FileOp key;
  key.path = "/etc/kubernetes/kubelet.conf";
  key.content = "secret material";
  key.mode = 0600;
  inputs.credentials["node-2"] = {key};
  const NodePlan node = make_plan(spec, {"node-2"}, inputs).nodes.at(0);
  std::string json = find_op(node, Fs::kRoot, kNodeIdentityPath)->content;
  auto at = json.find("\"path\": \"/etc/kubernetes/kubelet.conf\"");
  REQUIRE(at != std::string::npos);
  std::string line = json.substr(at, json.find('\n', at) - at);
  CHECK(line.find("\"secret\": true") != std::string::npos);
  CHECK(line.find("sha256") == std::string::npos);
  CHECK(json.find(sha256_hex("secret material")) == std::string::npos);
}

TEST_CASE("every template lands at the path its tree gives it, boot/firmware/ meaning the boot partition", "[plan]") {
  // docs/overlays.md: <folder>/<tree>/<path on a running Pi>; the boot partition is /boot/firmware.
  for (const char* containerd : {"1.7.22", "2.0.0"}) {
    ClusterSpec spec = default_spec();
    spec.containerd.version = containerd;
    std::set<std::string> folders;
    for (const NodePlan& n : make_plan(spec).nodes) {
      for (const FileOp& op : n.ops) {
        const std::string& src = op.source;
        const auto folder_end = src.find('/');
        const std::string folder = src.substr(0, folder_end);
        if (folder != "overlays" && folder != "dhcp" && folder != "netplan" && folder != "firmware") continue;
        if (src.ends_with("/_manifest")) continue;  // modes and links, checked by the tests of each file
        folders.insert(folder);
        std::string path = src.substr(src.find('/', folder_end + 1));  // "/etc/hostname.tmpl"
        if (path.ends_with(".tmpl")) path.resize(path.size() - 5);
        Fs fs = Fs::kRoot;
        if (path.starts_with("/boot/firmware/")) {
          fs = Fs::kBoot;
          path = path.substr(std::string("/boot/firmware").size());
        }
        INFO(src);
        CHECK(op.fs == fs);
        CHECK(op.path == path);
      }
    }
    CHECK(folders == std::set<std::string>{"overlays", "dhcp", "netplan", "firmware"});
  }
}

TEST_CASE("workers get the static-pod directory their kubelet configuration names", "[plan]") {
  BuildPlan plan = make_plan(default_spec());
  const NodePlan& worker = plan.nodes[1];
  const FileOp* config = find_op(worker, Fs::kRoot, kKubeletConfigPath);
  REQUIRE(config != nullptr);
  REQUIRE(config->content.find("staticPodPath: /etc/kubernetes/manifests\n") != std::string::npos);
  const FileOp* dir = find_op(worker, Fs::kRoot, "/etc/kubernetes/manifests");
  REQUIRE(dir != nullptr);
  CHECK(dir->kind == FileOp::Kind::kMkdir);
  CHECK(dir->mode == 0755);
  // The control plane's kubelet configuration and manifests directory come from kubeadm init.
  CHECK(find_op(plan.nodes[0], Fs::kRoot, kKubeletConfigPath) == nullptr);
  CHECK(find_op(plan.nodes[0], Fs::kRoot, "/etc/kubernetes/manifests") == nullptr);
}

TEST_CASE("the DHCP server: the spec's choice, else by the archive, else by the base's release", "[plan]") {
  auto release = [](const char* id, const char* version) {
    OsRelease r;
    r.id = id;
    r.version_id = version;
    return r;
  };
  const OsRelease unknown;
  CHECK(choose_dhcp_server("kea", release("ubuntu", "24.04")) == DhcpServer::kKea);
  CHECK(choose_dhcp_server("isc-dhcp-server", release("ubuntu", "28.04")) == DhcpServer::kIscDhcpServer);
  CHECK(choose_dhcp_server("kea", unknown, true) == DhcpServer::kKea);  // the spec wins over the archive
  // auto: the archive decides when it has been asked.
  CHECK(choose_dhcp_server("auto", release("ubuntu", "24.04"), false) == DhcpServer::kKea);
  CHECK(choose_dhcp_server("auto", release("ubuntu", "30.04"), true) == DhcpServer::kIscDhcpServer);
  // auto, by release: up to Ubuntu 26.04 and Debian 13 isc-dhcp-server, newer ones Kea.
  for (const char* v : {"20.04", "22.04", "24.04", "25.10", "26.04"}) {
    CHECK(choose_dhcp_server("auto", release("ubuntu", v)) == DhcpServer::kIscDhcpServer);
  }
  CHECK(choose_dhcp_server("auto", release("ubuntu", "26.10")) == DhcpServer::kKea);
  CHECK(choose_dhcp_server("auto", release("ubuntu", "28.04")) == DhcpServer::kKea);
  CHECK(choose_dhcp_server("auto", release("debian", "13")) == DhcpServer::kIscDhcpServer);
  CHECK(choose_dhcp_server("auto", release("debian", "14")) == DhcpServer::kKea);
  // Not known (dry run before the base is fetched), another distribution, a VERSION_ID that is no
  // number: seed 001's isc-dhcp-server.
  CHECK(choose_dhcp_server("auto", unknown) == DhcpServer::kIscDhcpServer);
  CHECK(choose_dhcp_server("auto", release("fedora", "99")) == DhcpServer::kIscDhcpServer);
  CHECK(choose_dhcp_server("auto", release("ubuntu", "devel")) == DhcpServer::kIscDhcpServer);
  CHECK(dhcp_server_facts(DhcpServer::kKea).package == "kea-dhcp4-server");
  CHECK(dhcp_server_facts(DhcpServer::kIscDhcpServer).service == "isc-dhcp-server.service");
}

TEST_CASE("the gateway gets the chosen DHCP server's files and package, and no other's", "[plan]") {
  ClusterSpec spec = default_spec();
  PlanInputs inputs;
  inputs.base_release.id = "ubuntu";
  inputs.base_release.version_id = "28.04";  // auto: Kea
  BuildPlan plan = make_plan(spec, {}, inputs);
  const NodePlan& gw = plan.nodes[0];
  const FileOp* kea = find_op(gw, Fs::kRoot, "/etc/kea/kea-dhcp4.conf");
  REQUIRE(kea != nullptr);
  CHECK(kea->content.find("\"pool\": \"10.0.0.100 - 10.0.0.200\"") != std::string::npos);
  CHECK(find_op(gw, Fs::kRoot, "/etc/systemd/system/kea-dhcp4-server.service") != nullptr);
  CHECK(find_op(gw, Fs::kRoot, "/etc/dhcp/dhcpd.conf") == nullptr);
  CHECK(find_op(gw, Fs::kRoot, "/etc/default/isc-dhcp-server") == nullptr);
  CHECK(find_op(gw, Fs::kRoot, "/etc/systemd/system/isc-dhcp-server.service") == nullptr);
  const FileOp* script = find_op(gw, Fs::kRoot, "/usr/local/sbin/pibake-dhcp-server");
  REQUIRE(script != nullptr);
  CHECK(script->mode == 0755);
  CHECK(script->content.find("SERVER=kea\n") != std::string::npos);
  const std::string firstboot = find_op(gw, Fs::kRoot, "/usr/local/sbin/pibake-firstboot")->content;
  CHECK(firstboot.find("PACKAGES=\"chrony conntrack etcd-client iptables kea-dhcp4-server socat") != std::string::npos);
  CHECK(firstboot.find("DHCP_SERVICE=kea-dhcp4-server.service\n") != std::string::npos);
  for (const NodePlan& worker : {plan.nodes[1], plan.nodes[3]}) {
    CHECK(find_op(worker, Fs::kRoot, "/etc/kea/kea-dhcp4.conf") == nullptr);
    CHECK(find_op(worker, Fs::kRoot, "/usr/local/sbin/pibake-dhcp-server") == nullptr);
    CHECK(find_op(worker, Fs::kRoot, "/usr/local/sbin/pibake-firstboot")
              ->content.find("PACKAGES=\"conntrack iptables socat\"\n") != std::string::npos);
  }
  // The spec's setting wins over the release.
  spec.network.dhcp_server = "isc-dhcp-server";
  const NodePlan isc = make_plan(spec, {}, inputs).nodes[0];
  CHECK(find_op(isc, Fs::kRoot, "/etc/dhcp/dhcpd.conf") != nullptr);
  CHECK(find_op(isc, Fs::kRoot, "/etc/kea/kea-dhcp4.conf") == nullptr);
  CHECK(find_op(isc, Fs::kRoot, "/usr/local/sbin/pibake-firstboot")->content.find("isc-dhcp-server") !=
        std::string::npos);
}

TEST_CASE("every node gets the clock floor files dated at the floor and the gateway serves time", "[plan]") {
  ClusterSpec spec = default_spec();
  // Before the PKI exists (--dry-run) there is no floor: no files.
  for (const NodePlan& n : make_plan(spec).nodes) {
    CHECK(find_op(n, Fs::kRoot, kClockEpochPath) == nullptr);
    CHECK(find_op(n, Fs::kRoot, kTimesyncClockPath) == nullptr);
  }
  PlanInputs inputs;
  inputs.clock_floor = 1796083200;  // 2026-12-01T00:00:00Z
  inputs.timesync_uid = 997;
  inputs.timesync_gid = 996;
  BuildPlan plan = make_plan(spec, {}, inputs);
  for (const NodePlan& n : plan.nodes) {
    const FileOp* epoch = find_op(n, Fs::kRoot, kClockEpochPath);
    const FileOp* clock = find_op(n, Fs::kRoot, kTimesyncClockPath);
    const FileOp* dir = find_op(n, Fs::kRoot, "/var/lib/systemd/timesync");
    REQUIRE(epoch != nullptr);
    REQUIRE(clock != nullptr);
    REQUIRE(dir != nullptr);
    CHECK(epoch->mtime == 1796083200);
    CHECK(clock->mtime == 1796083200);
    CHECK(epoch->content.empty());
    CHECK((epoch->uid == 0 && epoch->gid == 0 && epoch->mode == 0644));
    CHECK((clock->uid == 997 && clock->gid == 996 && clock->mode == 0644));
    CHECK((dir->kind == FileOp::Kind::kMkdir && dir->uid == 997 && dir->gid == 996 && dir->mode == 0755));
    const std::string firstboot = find_op(n, Fs::kRoot, "/usr/local/sbin/pibake-firstboot")->content;
    CHECK(firstboot.find("CLOCK_FLOOR=1796083200\n") != std::string::npos);
    // Only the gateway serves time; the others ask it, through chrony or timesyncd.
    CHECK((find_op(n, Fs::kRoot, "/etc/chrony/conf.d/pibake-gateway.conf") != nullptr) == n.gateway);
    CHECK((find_op(n, Fs::kRoot, "/etc/chrony/sources.d/pibake.sources") != nullptr) == !n.gateway);
    CHECK((find_op(n, Fs::kRoot, "/etc/systemd/timesyncd.conf.d/pibake.conf") != nullptr) == !n.gateway);
    CHECK((firstboot.find("PACKAGES=\"chrony ") != std::string::npos) == n.gateway);
  }
  CHECK(find_op(plan.nodes[0], Fs::kRoot, "/etc/chrony/conf.d/pibake-gateway.conf")
            ->content.find("allow 10.0.0.0/24\n") != std::string::npos);
  CHECK(find_op(plan.nodes[1], Fs::kRoot, "/etc/chrony/sources.d/pibake.sources")
            ->content.find("server 10.0.0.1 iburst maxpoll 7\n") != std::string::npos);
}

TEST_CASE("find_passwd_ids reads a user's uid and primary gid from passwd(5) text", "[plan]") {
  const std::string passwd =
      "root:x:0:0:root:/root:/bin/bash\n# comment\n\nsystemd-timesync:x:997:996:systemd Time Synchronization:/:"
      "/usr/sbin/nologin\nbroken:x:abc:1::/:/bin/sh\nshort:x:5\n";
  std::optional<PasswdIds> ids = find_passwd_ids(passwd, "systemd-timesync");
  REQUIRE(ids.has_value());
  CHECK((ids->uid == 997 && ids->gid == 996));
  CHECK(find_passwd_ids(passwd, "root")->uid == 0);
  CHECK_FALSE(find_passwd_ids(passwd, "systemd-timesyncd").has_value());  // whole names only
  CHECK_FALSE(find_passwd_ids(passwd, "broken").has_value());
  CHECK_FALSE(find_passwd_ids(passwd, "short").has_value());
  CHECK_FALSE(find_passwd_ids("", "root").has_value());
}

TEST_CASE("three control planes: a virtual IP, keepalived, and who inits or joins", "[plan]") {
  LoadResult r = load_spec_text("nodes: {count: 4, control_planes: 3}\n", "cluster.yaml");
  REQUIRE(r.problems.empty());
  const ClusterSpec& spec = r.spec;
  BuildPlan all = make_plan(spec);
  REQUIRE(all.nodes.size() == 4);
  for (const NodePlan& n : all.nodes) {
    const bool cp = n.number <= 3;
    INFO(n.node.name);
    CHECK((n.node.role == NodeRole::kControlPlane) == cp);
    // Only the first control plane of a whole-cluster build may init; the others join.
    CHECK(n.join_only == (cp && n.number != 1));
    CHECK(n.package_set == std::string(n.gateway ? "gateway" : "node") + (cp ? "-control-plane" : ""));
    const FileOp* keepalived = find_op(n, Fs::kRoot, "/etc/keepalived/keepalived.conf");
    const FileOp* join = find_op(n, Fs::kRoot, "/etc/kubernetes/pibake/kubeadm-join.yaml");
    const FileOp* check = find_op(n, Fs::kRoot, "/usr/local/sbin/pibake-apiserver-check");
    CHECK((keepalived != nullptr) == cp);
    CHECK((join != nullptr) == cp);
    CHECK((check != nullptr) == cp);
    const FileOp* firstboot = find_op(n, Fs::kRoot, "/usr/local/sbin/pibake-firstboot");
    REQUIRE(firstboot != nullptr);
    CHECK(firstboot->content.find("ENDPOINT=10.0.0.254\n") != std::string::npos);
    CHECK(firstboot->content.find(std::string("JOIN_ONLY=") + (n.join_only ? "yes" : "no") + "\n") !=
          std::string::npos);
    if (!cp) continue;
    CHECK(check->mode == 0755);
    CHECK(join->mode == 0600);
    // VRRP: the VIP on eth0, unicast to the two other control planes, a priority per node.
    const std::string& k = keepalived->content;
    CHECK(k.find("10.0.0.254/24 dev eth0") != std::string::npos);
    CHECK(k.find("virtual_router_id 254\n") != std::string::npos);
    CHECK(k.find("priority " + std::to_string(150 - n.number) + "\n") != std::string::npos);
    CHECK(k.find("unicast_src_ip " + n.node.ip + "\n") != std::string::npos);
    for (int other = 1; other <= 3; ++other) {
      const bool listed = k.find("        10.0.0." + std::to_string(other) + "\n") != std::string::npos;
      CHECK(listed == (other != n.number));
    }
    CHECK(firstboot->content.find("keepalived") != std::string::npos);
    // kubeadm: the endpoint is the VIP, and the certificate names it and every control plane.
    const FileOp* init = find_op(n, Fs::kRoot, "/etc/kubernetes/pibake/kubeadm-init.yaml");
    REQUIRE(init != nullptr);
    CHECK(init->content.find("controlPlaneEndpoint: \"10.0.0.254:6443\"") != std::string::npos);
    for (const char* san : {"10.0.0.254", "10.0.0.1", "node-2", "node-3.cluster.home", "kubernetes.cluster.home"}) {
      CHECK(init->content.find(std::string("    - \"") + san + "\"\n") != std::string::npos);
    }
    CHECK(join->content.find("advertiseAddress: " + n.node.ip + "\n") != std::string::npos);
    CHECK(join->content.find("kubeConfigPath: /etc/kubernetes/pibake/discovery.conf\n") != std::string::npos);
    // A worker exists: the control planes keep kubeadm's taint.
    CHECK(join->content.find("taints: []") == std::string::npos);
  }
  // A rebuilt control plane, node-1 included, joins the cluster that exists.
  for (const char* name : {"node-1", "node-2"}) {
    BuildPlan one = make_plan(spec, {name});
    REQUIRE(one.nodes.size() == 1);
    CHECK(one.nodes[0].join_only);
  }
  // A worker rebuilt, or the whole cluster, changes nothing about who inits.
  CHECK_FALSE(make_plan(spec, {"node-1", "node-2", "node-3"}).nodes[0].join_only);
  // A first build's card looks for a running cluster once; after the state dir recorded the
  // cluster, for kInitWaitRecordedSeconds.
  auto init_wait = [](const NodePlan& n) {
    const FileOp* f = find_op(n, Fs::kRoot, "/usr/local/sbin/pibake-firstboot");
    REQUIRE(f != nullptr);
    auto at = f->content.find("INIT_WAIT=${PIBAKE_INIT_WAIT:-");
    REQUIRE(at != std::string::npos);
    return f->content.substr(at, f->content.find('\n', at) - at);
  };
  CHECK(init_wait(all.nodes[0]) == "INIT_WAIT=${PIBAKE_INIT_WAIT:-0}");
  PlanInputs recorded;
  recorded.cluster_recorded = true;
  CHECK(init_wait(make_plan(spec, {}, recorded).nodes[0]) == "INIT_WAIT=${PIBAKE_INIT_WAIT:-600}");
}

TEST_CASE("one control plane keeps its own address as the endpoint and always inits", "[plan]") {
  ClusterSpec spec = default_spec();
  BuildPlan one = make_plan(spec, {"node-1"});
  REQUIRE(one.nodes.size() == 1);
  const NodePlan& n = one.nodes[0];
  CHECK_FALSE(n.join_only);
  CHECK(n.package_set == "gateway-control-plane");
  CHECK(find_op(n, Fs::kRoot, "/etc/keepalived/keepalived.conf") == nullptr);
  CHECK(find_op(n, Fs::kRoot, "/etc/kubernetes/pibake/kubeadm-join.yaml") == nullptr);
  const FileOp* init = find_op(n, Fs::kRoot, "/etc/kubernetes/pibake/kubeadm-init.yaml");
  REQUIRE(init != nullptr);
  CHECK(init->content.find("controlPlaneEndpoint: \"10.0.0.1:6443\"") != std::string::npos);
  CHECK(init->content.find("certSANs:\n    - \"10.0.0.1\"\n    - \"node-1\"\n    - \"node-1.cluster.home\"\n") !=
        std::string::npos);
}

TEST_CASE("three control planes and no worker all take workloads", "[plan]") {
  LoadResult r = load_spec_text("nodes: {count: 3, control_planes: 3}\n", "cluster.yaml");
  REQUIRE(r.problems.empty());
  for (const NodePlan& n : make_plan(r.spec).nodes) {
    const FileOp* join = find_op(n, Fs::kRoot, "/etc/kubernetes/pibake/kubeadm-join.yaml");
    REQUIRE(join != nullptr);
    CHECK(join->content.find("  taints: []\n") != std::string::npos);
  }
}

TEST_CASE("init_node_name: the first control plane, unless a build with a virtual IP leaves a control plane out",
          "[plan]") {
  ClusterSpec one = default_spec();
  CHECK(init_node_name(one, {"node-1", "node-2"}) == "node-1");
  CHECK(init_node_name(one, {"node-1"}) == "node-1");
  CHECK(init_node_name(one, {"node-3"}) == "node-1");  // named even when this build leaves it out
  LoadResult r = load_spec_text("nodes: {count: 4, control_planes: 3}\n", "cluster.yaml");
  REQUIRE(r.problems.empty());
  CHECK(init_node_name(r.spec, {"node-1", "node-2", "node-3", "node-4"}) == "node-1");
  CHECK(init_node_name(r.spec, {"node-1", "node-2", "node-3"}) == "node-1");
  CHECK(init_node_name(r.spec, {"node-1"}).empty());
  CHECK(init_node_name(r.spec, {"node-2", "node-4"}).empty());
}

TEST_CASE("an etcd snapshot goes to the card that inits only, 0600, and its first boot restores it", "[plan]") {
  PlanInputs inputs;
  inputs.etcd_snapshot = EtcdSnapshot{"/backups/etcd.db", std::string(64, 'c'), 8224, "1 2 8224 3 4"};
  ClusterSpec spec = default_spec();
  BuildPlan plan = make_plan(spec, {}, inputs);
  for (const NodePlan& n : plan.nodes) {
    INFO(n.node.name);
    const FileOp* snap = find_op(n, Fs::kRoot, kEtcdRestorePath);
    CHECK((snap != nullptr) == (n.node.name == "node-1"));
    const FileOp* timer = find_op(n, Fs::kRoot, "/etc/systemd/system/pibake-etcd-snapshot.timer");
    const FileOp* script = find_op(n, Fs::kRoot, "/usr/local/sbin/pibake-etcd-snapshot");
    CHECK((timer != nullptr) == (n.node.role == NodeRole::kControlPlane));
    CHECK((script != nullptr) == (n.node.role == NodeRole::kControlPlane));
    if (script != nullptr) CHECK(script->mode == 0755);
    if (snap == nullptr) continue;
    CHECK(snap->kind == FileOp::Kind::kCopyFile);
    CHECK(snap->mode == 0600);
    CHECK(snap->uid == 0);
    CHECK(snap->source_path == "/backups/etcd.db");
    CHECK(snap->source == "etcd snapshot etcd.db");
    // node.json (readable by all) records its size only, as for every secret: no digest, no path.
    const std::string json = find_op(n, Fs::kRoot, kNodeIdentityPath)->content;
    CHECK(json.find("\"path\": \"/var/lib/pibake/etcd-restore.db\", \"kind\": \"file\", \"mode\": \"0600\", "
                    "\"size\": 8224, \"secret\": true}") != std::string::npos);
    CHECK(json.find("/backups") == std::string::npos);
    CHECK(json.find(std::string(64, 'c')) == std::string::npos);
    CHECK(snap->source_identity == "1 2 8224 3 4");
    CHECK(snap->size == 8224);
    const std::string firstboot = find_op(n, Fs::kRoot, "/usr/local/sbin/pibake-firstboot")->content;
    CHECK(firstboot.find("--ignore-preflight-errors=DirAvailable--var-lib-etcd") != std::string::npos);
    CHECK(firstboot.find("--initial-advertise-peer-urls \"https://$NODE_IP:2380\"") != std::string::npos);
  }
  // Regenerating the single control plane carries it; a worker alone does not.
  CHECK(find_op(make_plan(spec, {"node-1"}, inputs).nodes[0], Fs::kRoot, kEtcdRestorePath) != nullptr);
  CHECK(find_op(make_plan(spec, {"node-2"}, inputs).nodes[0], Fs::kRoot, kEtcdRestorePath) == nullptr);
  // Three control planes: only node-1 of a build of all three; a control plane rebuilt alone joins.
  LoadResult r = load_spec_text("nodes: {count: 4, control_planes: 3}\n", "cluster.yaml");
  REQUIRE(r.problems.empty());
  BuildPlan ha = make_plan(r.spec, {}, inputs);
  CHECK(find_op(ha.nodes[0], Fs::kRoot, kEtcdRestorePath) != nullptr);
  for (size_t i = 1; i < ha.nodes.size(); ++i) CHECK(find_op(ha.nodes[i], Fs::kRoot, kEtcdRestorePath) == nullptr);
  CHECK(find_op(make_plan(r.spec, {"node-1"}, inputs).nodes[0], Fs::kRoot, kEtcdRestorePath) == nullptr);
}
