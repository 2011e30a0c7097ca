// The docker_registry images driver: does an image tag exist, and which digest does it point at,
// asked of a registry speaking the distribution v2 API (Docker Hub, Harbor, GitLab, the CNCF
// distribution server, ...). See README.md here.
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_docker_registry(const std::string& instance, const Value& config, const DriverEnv& env);

namespace docker_registry {

// The manifest media types asked for (OCI index and manifest, Docker manifest list and v2
// manifest). Without them a registry may answer with a schema-1 conversion, whose digest is not
// the image's, or refuse the request.
extern const char* const kManifestAccept;

}  // namespace docker_registry

}  // namespace gray::plugins
