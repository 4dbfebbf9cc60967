// The Kubernetes manifests (deploy/grinqh.yaml) agree with the server: the ConfigMap's
// config passes the server's own validation, and the probes and ports point where it listens.
#include "gtest/gtest.h"
#include "server/config.h"
#include "tests/fixtures.h"
#include "yaml-cpp/yaml.h"

namespace grinqh {
namespace {

TEST(DeployTest, ManifestsMatchTheServerConfig) {
  const auto path = ::grinqh::testing::SourceDir() / "deploy" / "grinqh.yaml";
  const std::vector<YAML::Node> documents = YAML::LoadAllFromFile(path.string());
  YAML::Node config_map, deployment, service;
  for (const YAML::Node& doc : documents) {
    const std::string kind = doc["kind"].as<std::string>();
    if (kind == "ConfigMap") config_map = doc;
    if (kind == "Deployment") deployment = doc;
    if (kind == "Service") service = doc;
  }
  ASSERT_TRUE(config_map && deployment && service);

  const absl::StatusOr<ServerConfig> config =
      ParseServerConfig(config_map["data"]["grinqh.yaml"].as<std::string>(), "deploy/grinqh.yaml ConfigMap");
  ASSERT_TRUE(config.ok()) << config.status();

  const YAML::Node pod = deployment["spec"]["template"]["spec"];
  const YAML::Node container = pod["containers"][0];
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
    EXPECT_EQ(container[probe]["grpc"]["port"].as<int>(), config->server.port) << probe;
  }
  EXPECT_EQ(deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"].as<std::string>(),
            std::to_string(config->metrics.port));
  // Kubernetes must wait out the drain before it kills the pod.
  EXPECT_GT(pod["terminationGracePeriodSeconds"].as<double>(), config->server.shutdown_grace_seconds);
  int service_ports = 0;
  for (const YAML::Node& port : service["spec"]["ports"]) {
    const int number = port["port"].as<int>();
    EXPECT_TRUE(number == config->server.port || number == config->metrics.port || number == config->http.port)
        << number;
    ++service_ports;
  }
  EXPECT_EQ(service_ports, 3);
  EXPECT_EQ(config->http.host, "0.0.0.0");  // the Service reaches the HTTP API only off loopback
}

}  // namespace
}  // namespace grinqh
