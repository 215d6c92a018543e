// Helpers shared by the spec's .cpp files (field paths, quoting, value checks); not part of the
// spec's public interface.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spec/spec.h"

namespace pibake::spec_detail {

// ---- Field paths (syntax in spec.h's Diagnostic and docs/spec.md) ----

// "nodes" + 2 -> "nodes[2]".
std::string item_field(std::string_view list, size_t index);
// "https://dl.k8s.io" -> mirrors["https://dl.k8s.io"].
std::string mirror_field(std::string_view prefix);
// The path one level up: "nodes[2].ip" -> "nodes[2]" -> "nodes" -> "". Understands quoted
// mirrors["..."] components, whose keys may hold '.' and '['.
std::string parent_field(std::string_view field);

// ---- Quoting values in messages ----

// The longest value a message quotes in full; longer ones are cut (docs/spec.md, "Errors").
constexpr size_t kMaxQuoted = 80;
// "value" with '"', '\' and control characters escaped, so empty or odd values stay visible. A
// message never echoes more than a line: the value is cut at its first newline or after
// kMaxQuoted bytes (then "..." follows), and anything holding "PRIVATE KEY" is not shown at all.
std::string quote(std::string_view value);
// Like quote(), cut after `max` bytes (SSH keys: their type and the start of their data).
std::string quote_short(std::string_view value, size_t max = 40);

// ---- Value checks (pure predicates, each documented in docs/spec.md) ----

// RFC 1123 label: 1..63 of a-z 0-9 '-', not starting or ending with '-'.
bool is_dns_label(std::string_view s);
// RFC 1123 subdomain: labels joined by '.', at most 253 characters, lower case.
bool is_dns_name(std::string_view s);
// Like is_dns_name, also allowing a leading "*." (wildcard certificate SAN).
bool is_san_dns_name(std::string_view s);
bool is_ipv6(std::string_view s);
// Debian's NAME_REGEX for useradd/adduser: [a-z_][a-z0-9_-]*, at most 32 characters.
bool is_linux_user_name(std::string_view s);
// Why `line` is not an authorized_keys public key line, or nullopt when it is one.
std::optional<std::string> ssh_key_problem(std::string_view line);
bool is_hex(std::string_view s);
// Three dot-separated decimal numbers: MAJOR.MINOR.PATCH ("2.3.4").
bool is_version(std::string_view v);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);

// ---- Validation parts (validate.cpp calls them in order) ----

using Problems = std::vector<Diagnostic>;
void validate_nodes_and_network(const ClusterSpec& spec, Problems& out);
void validate_uplink(const ClusterSpec& spec, Problems& out);

// Versions against the compatibility table (validate_versions.cpp): kubernetes.version's form
// (a release vX.Y.Z or a channel stable / stable-1.NN), a minor pibake knows or
// kubernetes.allow_unknown_version, containerd new enough and 2.x from Kubernetes 1.36.
void validate_versions(const ClusterSpec& spec, Problems& out);

// Flannel (through kube-controller-manager's default node CIDR mask) gives every node a /24 of
// the pod CIDR.
inline constexpr int kNodePodPrefix = 24;

// kubeadm's own limits on the pod and service subnets (validate_kubeadm_limits.cpp): a service
// subnet with more than 20 host bits, a pod subnet more than 16 bits wider than the per-node /24.
// `pods`/`services` are nullopt when the field is itself reported as malformed.
void validate_kubeadm_subnet_limits(const std::optional<Cidr>& pods, const std::optional<Cidr>& services,
                                    Problems& out);

// ---- The wireless regulatory database (regdb_countries.cpp, generated) ----

// True when `alpha2` ("GB") is a country of the Linux wireless regulatory database (Debian's
// wireless-regdb regulatory.db); the world domain "00" is not a country and gives false.
bool is_regdb_country(std::string_view alpha2);
// The version of wireless-regdb the table was generated from ("2026.05.30-1~deb12u1").
std::string_view regdb_version();

// Why `text` is not a CIDR range, phrased after the value ("is not ..."), or nullopt when it is.
std::optional<std::string> cidr_problem(std::string_view text);

}  // namespace pibake::spec_detail
