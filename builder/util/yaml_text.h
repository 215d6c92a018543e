// YAML double-quoted scalars: how pibake writes any string into YAML it generates (cloud-init
// user-data, netplan, kubeconfigs, the spec) and quotes values in messages.
#pragma once

#include <string>
#include <string_view>

namespace pibake {

// `s` between double quotes, with '"' and '\\' escaped and control characters as \n, \t or \xHH,
// so any value (an SSID, a password, "system:node:x") reads back exactly as written.
std::string yaml_quote(std::string_view s);

}  // namespace pibake
