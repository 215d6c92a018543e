// Reading cluster.yaml with yaml-cpp into a ClusterSpec: every value's location is recorded, and
// unknown keys, duplicate keys, wrong types and syntax errors become problems instead of throwing.
#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

#include "spec/spec.h"
#include "spec/spec_internal.h"
#include "util/error.h"
#include "util/text.h"
#include "util/yaml_text.h"

namespace pibake {
namespace {

using spec_detail::item_field;
using spec_detail::quote;
using Keys = std::initializer_list<std::string_view>;

SourceLoc to_loc(const YAML::Mark& mark) {
  if (mark.is_null()) return {};
  return SourceLoc{mark.line + 1, mark.column + 1};  // yaml-cpp counts from 0
}

const char* describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "a string";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

std::string join_field(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : std::string(parent) + "." + std::string(key);
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "unknown key "subnett" (did you mean "subnet"?)" — or the valid keys when nothing is close.
std::string unknown_key_message(std::string_view key, Keys known) {
  std::string_view best;
  size_t best_distance = 3;  // suggest only up to two edits away
  for (std::string_view candidate : known) {
    size_t d = edit_distance(key, candidate);
    if (d < best_distance && d < key.size()) {
      best = candidate;
      best_distance = d;
    }
  }
  if (!best.empty()) return "unknown key " + quote(key) + " (did you mean " + quote(best) + "?)";
  std::string list;
  for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
  return "unknown key " + quote(key) + " (expected one of: " + list + ")";
}

// How each listed node was written: the defaults for ip and role depend on the whole file.
struct ListedNode {
  bool ip_given = false;
  bool role_given = false;
};

class Loader {
 public:
  Loader(ClusterSpec& spec, std::vector<Diagnostic>& problems) : spec_(spec), problems_(problems) {}

  void load(const YAML::Node& root) {
    if (root.IsNull()) return;  // an empty file (or only comments): the defaults
    if (!check_map(root, "",
                   {"cluster", "base_image", "nodes", "network", "kubernetes", "containerd", "runc", "cni_plugins",
                    "etcd", "access", "packages", "mirrors"},
                   "a map of settings (cluster, nodes, network, ...)")) {
      return;
    }
    load_cluster(root["cluster"]);
    load_base_image(root["base_image"]);
    load_nodes(root["nodes"]);
    load_network(root["network"]);
    load_kubernetes(root["kubernetes"]);
    load_component(root["containerd"], "containerd", spec_.containerd);
    load_component(root["runc"], "runc", spec_.runc);
    load_component(root["cni_plugins"], "cni_plugins", spec_.cni_plugins);
    load_component(root["etcd"], "etcd", spec_.etcd);
    load_access(root["access"]);
    load_packages(root["packages"]);
    load_mirrors(root["mirrors"]);
  }

  // Fills what depends on the whole file: listed nodes' default addresses and control plane, or
  // the generated list of `nodes: {count: N}` (the subnet may come after `nodes:`).
  void finish() {
    if (!spec_.nodes_listed) {
      apply_node_count(spec_, count_);
      if (count_loc_.known()) spec_.locations["nodes.count"] = count_loc_;
      return;
    }
    std::optional<Cidr> subnet = Cidr::parse(spec_.network.subnet);
    bool any_control_plane = false;
    for (size_t i = 0; i < spec_.nodes.size(); ++i) {
      NodeSpec& node = spec_.nodes[i];
      if (!listed_[i].ip_given && subnet && i + 1 <= subnet->host_count()) {
        node.ip = subnet->at(static_cast<uint32_t>(i + 1)).str();
      }
      any_control_plane = any_control_plane || node.role == NodeRole::kControlPlane;
    }
    // Only a first node without a written role becomes the control plane: an explicit
    // "role: worker" on every node is reported by validate() rather than overridden.
    if (!any_control_plane && !spec_.nodes.empty() && !listed_[0].role_given) {
      spec_.nodes[0].role = NodeRole::kControlPlane;
    }
    spec_.node_count = static_cast<int>(spec_.nodes.size());
  }

  const std::vector<std::string>& unread() const { return unread_; }

 private:
  void problem(const std::string& field, std::string message, SourceLoc loc = {}) {
    problems_.push_back(Diagnostic{field, std::move(message), loc});
  }

  // A value that could not be read: it keeps its default, which validate() need not check.
  void unreadable(const std::string& field, std::string message, SourceLoc loc = {}) {
    problem(field, std::move(message), loc);
    unread_.push_back(field);
  }

  void locate(const std::string& field, const YAML::Node& node) {
    SourceLoc loc = to_loc(node.Mark());
    if (loc.known()) spec_.locations[field] = loc;
  }

  // True when `node` is a map whose keys are all in `known` (any key when `known` is empty);
  // reports a non-map, non-string keys, unknown keys and keys given twice (yaml-cpp would quietly
  // use the first). A missing or empty value is not a map but not a problem: defaults stay.
  bool check_map(const YAML::Node& node, const std::string& field, Keys known, const char* expected = "a map") {
    if (!node || node.IsNull()) return false;
    locate(field, node);
    if (!node.IsMap()) {
      unreadable(field, std::string("expected ") + expected + ", found " + describe(node));
      return false;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      SourceLoc key_loc = to_loc(it->first.Mark());
      if (!it->first.IsScalar()) {
        problem(field, std::string("a key must be a string, found ") + describe(it->first), key_loc);
        continue;
      }
      const std::string& key = it->first.Scalar();
      // A key that is not a plain name (a typo can hold anything, even a NUL or a line break) is
      // shown quoted, as mirrors' keys are, so a message stays one line.
      const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
      });
      std::string key_field = field == "mirrors" ? spec_detail::mirror_field(key)
                              : plain            ? join_field(field, key)
                                                 : field + "[" + yaml_quote(key) + "]";
      if (!seen.insert(key).second) {
        problem(key_field, "duplicate key " + quote(key), key_loc);
      } else if (known.size() > 0 && std::find(known.begin(), known.end(), key) == known.end()) {
        problem(key_field, unknown_key_message(key, known), key_loc);
      }
    }
    return true;
  }

  // A string value; a missing or empty value keeps `out`'s default.
  void read_string(const YAML::Node& map, std::string_view key, const std::string& parent, std::string& out) {
    const YAML::Node value = map[std::string(key)];
    if (!value || value.IsNull()) return;
    std::string field = join_field(parent, key);
    locate(field, value);
    if (!value.IsScalar()) {
      unreadable(field, std::string("expected a string, found ") + describe(value));
      return;
    }
    out = value.Scalar();
  }

  // A boolean (YAML 1.2 core schema: true or false); a missing or empty value keeps `out`.
  void read_bool(const YAML::Node& map, std::string_view key, const std::string& parent, bool& out) {
    const YAML::Node value = map[std::string(key)];
    if (!value || value.IsNull()) return;
    std::string field = join_field(parent, key);
    locate(field, value);
    if (!value.IsScalar() || (value.Scalar() != "true" && value.Scalar() != "false")) {
      unreadable(field, "expected true or false, found " +
                            (value.IsScalar() ? spec_detail::quote(value.Scalar()) : std::string(describe(value))));
      return;
    }
    out = value.Scalar() == "true";
  }

  void read_string_list(const YAML::Node& map, std::string_view key, const std::string& parent,
                        std::vector<std::string>& out) {
    const YAML::Node value = map[std::string(key)];
    if (!value || value.IsNull()) return;
    std::string field = join_field(parent, key);
    locate(field, value);
    if (!value.IsSequence()) {
      unreadable(field, std::string("expected a list of strings, found ") + describe(value));
      return;
    }
    out.clear();
    for (size_t i = 0; i < value.size(); ++i) {
      const YAML::Node item = value[i];
      std::string item_path = item_field(field, i);
      locate(item_path, item);
      if (item.IsScalar()) {
        out.push_back(item.Scalar());
      } else if (item.IsNull()) {
        out.emplace_back();  // "- " with nothing: validate() says what is missing
      } else {
        unreadable(item_path, std::string("expected a string, found ") + describe(item));
        out.emplace_back();
      }
    }
  }

  void load_cluster(const YAML::Node& node) {
    if (!check_map(node, "cluster", {"name", "domain"})) return;
    read_string(node, "name", "cluster", spec_.cluster.name);
    read_string(node, "domain", "cluster", spec_.cluster.domain);
  }

  void load_base_image(const YAML::Node& node) {
    if (!check_map(node, "base_image", {"url", "sha256", "sha256sums"})) return;
    read_string(node, "url", "base_image", spec_.base_image.url);
    read_string(node, "sha256", "base_image", spec_.base_image.sha256);
    read_string(node, "sha256sums", "base_image", spec_.base_image.sha256sums);
    // SHA256SUMS files and sha256sum print lower case; a digest pasted in upper case is the same.
    spec_.base_image.sha256 = ascii_lower(spec_.base_image.sha256);
  }

  void load_nodes(const YAML::Node& node) {
    if (!node || node.IsNull()) return;
    locate("nodes", node);
    if (node.IsSequence()) {
      load_node_list(node);
      return;
    }
    if (!check_map(node, "nodes", {"count", "control_planes"}, "{count: N} or a list of nodes")) return;
    if (std::optional<int> n = read_int(node, "count", count_loc_)) count_ = *n;
    SourceLoc control_planes_loc;
    if (std::optional<int> k = read_int(node, "control_planes", control_planes_loc)) {
      spec_.control_plane_count = *k;
      spec_.locations["nodes.control_planes"] = control_planes_loc;
    }
  }

  // nodes.<key>, a whole number; nullopt (reported when present but not a number) otherwise.
  std::optional<int> read_int(const YAML::Node& map, const std::string& key, SourceLoc& loc) {
    const YAML::Node value = map[key];
    if (!value || value.IsNull()) return std::nullopt;
    loc = to_loc(value.Mark());
    std::optional<int> n = value.IsScalar() ? parse_int(value.Scalar()) : std::nullopt;
    if (!n) {
      std::string shown = value.IsScalar() ? quote(value.Scalar()) : describe(value);
      unreadable("nodes." + key, shown + " is not a whole number", loc);
    }
    return n;
  }

  // A decimal integer, optionally negative (so "-1" is reported as out of range, not as text).
  static std::optional<int> parse_int(std::string_view s) {
    bool negative = !s.empty() && s[0] == '-';
    if (negative) s.remove_prefix(1);
    if (s.empty() || s.size() > 9) return std::nullopt;
    int value = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    return negative ? -value : value;
  }

  void load_node_list(const YAML::Node& list) {
    spec_.nodes_listed = true;
    spec_.nodes.clear();
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node item = list[i];
      std::string field = item_field("nodes", i);
      // Unreadable entries still take their place, so that nodes[i] means the i-th entry.
      NodeSpec& node = spec_.nodes.emplace_back();
      ListedNode& how = listed_.emplace_back();
      if (!check_map(item, field, {"name", "ip", "role"}, "a map {name, ip, role}")) {
        if (!item || item.IsNull()) unreadable(field, "expected a map {name, ip, role}, found nothing");
        continue;
      }
      read_string(item, "name", field, node.name);
      how.ip_given = item["ip"] && !item["ip"].IsNull();
      read_string(item, "ip", field, node.ip);
      std::string role;
      read_string(item, "role", field, role);
      if (role == "control-plane") {
        node.role = NodeRole::kControlPlane;
        how.role_given = true;
      } else if (role == "worker") {
        how.role_given = true;
      } else if (item["role"] && item["role"].IsScalar()) {
        // Left unset, so the one problem is this one, not also "no control plane".
        unreadable(field + ".role", quote(role) + " is not a role: use control-plane or worker");
      }
    }
  }

  void load_network(const YAML::Node& node) {
    if (!check_map(node, "network", {"subnet", "gateway", "uplink", "dhcp_range", "dns", "dhcp_server"})) return;
    read_string(node, "subnet", "network", spec_.network.subnet);
    read_string(node, "gateway", "network", spec_.network.gateway);
    read_string(node, "dhcp_range", "network", spec_.network.dhcp_range);
    read_string_list(node, "dns", "network", spec_.network.dns);
    read_string(node, "dhcp_server", "network", spec_.network.dhcp_server);
    const YAML::Node uplink = node["uplink"];
    if (!check_map(uplink, "network.uplink", {"interface", "wifi"})) return;
    read_string(uplink, "interface", "network.uplink", spec_.network.uplink.interface);
    const YAML::Node wifi = uplink["wifi"];
    if (!check_map(wifi, "network.uplink.wifi", {"ssid", "password", "country"})) return;
    WifiSpec& w = spec_.network.uplink.wifi.emplace();
    read_string(wifi, "ssid", "network.uplink.wifi", w.ssid);
    read_string(wifi, "password", "network.uplink.wifi", w.password);
    read_string(wifi, "country", "network.uplink.wifi", w.country);
  }

  void load_kubernetes(const YAML::Node& node) {
    if (!check_map(node, "kubernetes",
                   {"version", "pod_cidr", "service_cidr", "api_server_sans", "api_vip", "cni", "image_repository",
                    "allow_unknown_version", "mode"})) {
      return;
    }
    KubernetesSpec& k = spec_.kubernetes;
    read_string(node, "version", "kubernetes", k.version);
    read_string(node, "pod_cidr", "kubernetes", k.pod_cidr);
    read_string(node, "service_cidr", "kubernetes", k.service_cidr);
    read_string_list(node, "api_server_sans", "kubernetes", k.api_server_sans);
    read_string(node, "api_vip", "kubernetes", k.api_vip);
    read_string(node, "cni", "kubernetes", k.cni);
    read_string(node, "image_repository", "kubernetes", k.image_repository);
    read_bool(node, "allow_unknown_version", "kubernetes", k.allow_unknown_version);
    read_string(node, "mode", "kubernetes", k.mode);
    // The hard way routes pods itself (the bridge plugin, static routes): its default CNI.
    if (k.mode == kModeHardWay && !node["cni"]) k.cni = std::string(kBridgeCni);
  }

  void load_component(const YAML::Node& node, const std::string& field, ComponentSpec& out) {
    if (!check_map(node, field, {"version"})) return;
    read_string(node, "version", field, out.version);
  }

  void load_access(const YAML::Node& node) {
    if (!check_map(node, "access", {"user", "ssh_authorized_keys", "password_hash"})) return;
    read_string(node, "user", "access", spec_.access.user);
    read_string_list(node, "ssh_authorized_keys", "access", spec_.access.ssh_authorized_keys);
    read_string(node, "password_hash", "access", spec_.access.password_hash);
  }

  void load_packages(const YAML::Node& node) {
    if (!check_map(node, "packages", {"archive", "keyring"})) return;
    read_string(node, "archive", "packages", spec_.packages.archive);
    read_string_list(node, "keyring", "packages", spec_.packages.keyring);
  }

  void load_mirrors(const YAML::Node& node) {
    if (!check_map(node, "mirrors", {}, "a map of URL prefix: replacement")) return;
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar() || !seen.insert(it->first.Scalar()).second) continue;
      const std::string& prefix = it->first.Scalar();
      std::string field = spec_detail::mirror_field(prefix);
      const YAML::Node value = it->second;
      locate(field, value.IsNull() ? it->first : value);
      if (value.IsScalar()) {
        spec_.mirrors.emplace_back(prefix, value.Scalar());
      } else if (value.IsNull()) {
        spec_.mirrors.emplace_back(prefix, "");  // validate() reports the missing replacement
      } else {
        unreadable(field, std::string("expected a string, found ") + describe(value));
      }
    }
  }

  ClusterSpec& spec_;
  std::vector<Diagnostic>& problems_;
  std::vector<std::string> unread_;  // fields whose value kept its default after a problem
  int count_ = ClusterSpec{}.node_count;
  SourceLoc count_loc_;
  std::vector<ListedNode> listed_;
};

// True when `field` is `parent` or lies inside it ("nodes[1].name" inside "nodes[1]").
bool within(const std::string& field, const std::string& parent) {
  if (parent.empty() || field == parent) return true;
  return spec_detail::starts_with(field, parent) && (field[parent.size()] == '.' || field[parent.size()] == '[');
}

// Where the second of `documents` begins: the line of the marker ("---" or "...") that ended the
// first document, or else the second document's first node.
SourceLoc second_document_loc(const std::string& text, const YAML::Mark& second_start) {
  int line = 1;
  int markers = 0;
  bool content_seen = false;
  for (size_t start = 0; start < text.size(); ++line) {
    size_t end = text.find('\n', start);
    std::string_view l(text.data() + start, (end == std::string::npos ? text.size() : end) - start);
    bool marker = l.substr(0, 3) == "---" || l.substr(0, 3) == "...";
    if (marker && (content_seen || ++markers > 1)) return SourceLoc{line, 1};
    if (!marker && !l.empty() && l[0] != '#' && l[0] != ' ' && l[0] != '%') content_seen = true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return to_loc(second_start);
}

// Counts the documents of a YAML text through yaml-cpp's event parser, with a bound on the events
// it may emit. YAML::LoadAll never returns on some short inputs in yaml-cpp 0.7 (",le: cr": the
// parser emits null nodes until memory runs out; found by tests/fuzz fuzz_spec), so the text is
// scanned here first and read with YAML::Load only once it is known to be finite and one
// document. Throws YAML exceptions for syntax errors and EndlessYaml past the bound.
struct EndlessYaml {};
class DocumentCounter : public YAML::EventHandler {
 public:
  // A byte of input yields at most a few events (an implicit null key and value, a map start...).
  explicit DocumentCounter(size_t text_bytes) : limit_(8 * text_bytes + 64) {}
  size_t documents() const { return starts_.size(); }
  const YAML::Mark& start(size_t i) const { return starts_.at(i); }

  void OnDocumentStart(const YAML::Mark& mark) override {
    tick();
    starts_.push_back(mark);
  }
  void OnDocumentEnd() override { tick(); }
  void OnNull(const YAML::Mark&, YAML::anchor_t) override { tick(); }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { tick(); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override { tick(); }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    tick();
  }
  void OnSequenceEnd() override { tick(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override { tick(); }
  void OnMapEnd() override { tick(); }

 private:
  void tick() {
    if (++events_ > limit_) throw EndlessYaml{};
  }
  size_t limit_;
  size_t events_ = 0;
  std::vector<YAML::Mark> starts_;
};

}  // namespace

LoadResult load_spec_text(const std::string& text, const std::string& display_path) {
  LoadResult result;
  result.spec.source_path = display_path;
  YAML::Node root;
  try {
    // Every document counted, not just the first: YAML::Load reads the first document and
    // silently drops the rest of the file.
    DocumentCounter counter(text.size());
    std::istringstream in(text);
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(counter)) {
    }
    if (counter.documents() > 1) {
      result.problems.push_back(Diagnostic{"",
                                           "a second YAML document starts here: cluster.yaml is one document (remove "
                                           "the \"---\" or \"...\" line and what follows, or merge it)",
                                           second_document_loc(text, counter.start(1))});
      apply_node_count(result.spec, result.spec.node_count);
      return result;
    }
    if (counter.documents() == 1) root = YAML::Load(text);
  } catch (const EndlessYaml&) {
    result.problems.push_back(Diagnostic{"",
                                         "the YAML parser (yaml-cpp) does not come to an end on this text: check it "
                                         "for stray characters such as a leading \",\", \"?\" or \"[\"",
                                         SourceLoc{1, 1}});
    apply_node_count(result.spec, result.spec.node_count);
    return result;
  } catch (const YAML::Exception& e) {
    // The parser stops at the first error: that one problem is all there is to report.
    result.problems.push_back(Diagnostic{"", "YAML syntax error: " + e.msg, to_loc(e.mark)});
    apply_node_count(result.spec, result.spec.node_count);
    return result;
  }
  Loader loader(result.spec, result.problems);
  loader.load(root);
  loader.finish();
  // A value that could not be read kept its default; checking it again would only add noise.
  for (Diagnostic& d : validate(result.spec)) {
    bool shadowed = std::any_of(loader.unread().begin(), loader.unread().end(),
                                [&](const std::string& f) { return within(d.field, f); });
    if (!shadowed) result.problems.push_back(std::move(d));
  }
  // File order reads like a compiler's output; stable, so one value's problems keep their order.
  auto key = [&](const Diagnostic& d) {
    SourceLoc loc = diagnostic_location(result.spec, d);
    return loc.known() ? std::pair(loc.line, loc.column) : std::pair(INT_MAX, INT_MAX);
  };
  std::stable_sort(result.problems.begin(), result.problems.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
  return result;
}

LoadResult load_spec(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error("cannot read " + path + ": " + std::strerror(errno));
  return load_spec_text(text.str(), path);
}

}  // namespace pibake
