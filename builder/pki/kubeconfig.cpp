// kubeconfig files (client-go's clientcmd v1 Config) with embedded credentials, as kubeadm writes
// admin.conf and as `kubectl config set-cluster --embed-certs` would.
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include "pki/pki.h"
#include "util/error.h"
#include "util/yaml_text.h"

namespace pibake::pki {
namespace {

// Every scalar double-quoted: names like "system:node:node-2" or "kubernetes-admin@pi" are then
// never mistaken for YAML syntax, whatever the spec's cluster name holds.
std::string quoted(std::string_view s) { return yaml_quote(s); }

}  // namespace

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string api_server_url(std::string_view address, int port) {
  std::string host(address);
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "https://" + host + ":" + std::to_string(port);
}

std::string render_kubeconfig(const KubeconfigSpec& spec) {
  if (spec.cluster_name.empty() || spec.server.empty() || spec.user.empty()) {
    throw Error("kubeconfig: cluster name, server and user must not be empty");
  }
  if (spec.ca_cert_pem.empty() || spec.client.cert_pem.empty() || spec.client.key_pem.empty()) {
    throw Error("kubeconfig for " + spec.user + ": missing CA, client certificate or key");
  }
  // Context "<user>@<cluster>", kubeadm's naming (kubeconfigutil.CreateBasic).
  const std::string context = spec.user + "@" + spec.cluster_name;
  std::string y;
  y += "apiVersion: v1\n";
  y += "kind: Config\n";
  y += "clusters:\n";
  y += "- name: " + quoted(spec.cluster_name) + "\n";
  y += "  cluster:\n";
  y += "    certificate-authority-data: " + base64_encode(spec.ca_cert_pem) + "\n";
  y += "    server: " + quoted(spec.server) + "\n";
  y += "contexts:\n";
  y += "- name: " + quoted(context) + "\n";
  y += "  context:\n";
  y += "    cluster: " + quoted(spec.cluster_name) + "\n";
  y += "    user: " + quoted(spec.user) + "\n";
  y += "current-context: " + quoted(context) + "\n";
  y += "preferences: {}\n";
  y += "users:\n";
  y += "- name: " + quoted(spec.user) + "\n";
  y += "  user:\n";
  y += "    client-certificate-data: " + base64_encode(spec.client.cert_pem) + "\n";
  y += "    client-key-data: " + base64_encode(spec.client.key_pem) + "\n";
  return y;
}

namespace {

// The client certificate embedded in a kubeconfig (users[0].user.client-certificate-data) as PEM;
// empty when there is none or it does not decode.
std::string client_cert_pem(const std::string& kubeconfig) {
  try {
    YAML::Node root = YAML::Load(kubeconfig);
    std::string b64 = root["users"][0]["user"]["client-certificate-data"].as<std::string>();
    std::string pem(b64.size(), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(pem.data()),
                            reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
    if (n <= 0) return {};
    pem.resize(static_cast<size_t>(n));
    return pem;
  } catch (const std::exception&) {
    return {};
  }
}

// `field` (cert_not_after or cert_not_before) of the kubeconfig's client certificate; 0 when it
// has none or it cannot be read.
std::time_t client_cert_time(const std::string& kubeconfig, std::time_t (*field)(const std::string&)) {
  std::string pem = client_cert_pem(kubeconfig);
  if (pem.empty()) return 0;
  try {
    return field(pem);
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

std::time_t kubeconfig_client_cert_not_after(const std::string& kubeconfig) {
  return client_cert_time(kubeconfig, cert_not_after);
}

std::time_t kubeconfig_client_cert_not_before(const std::string& kubeconfig) {
  return client_cert_time(kubeconfig, cert_not_before);
}

}  // namespace pibake::pki
