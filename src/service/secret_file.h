// Secrets read from files (a mounted Kubernetes Secret), never from flags or the
// environment, so that no process listing or environment dump shows them. Callers read
// the file again whenever they open a new connection: a rotated secret is picked up in
// place, without a restart.
#pragma once

#include <optional>
#include <string>

namespace balanced::service {

// The file's content without its trailing line ends ("\n", "\r\n"); nullopt when it
// cannot be read.
std::optional<std::string> read_secret_file(const std::string& path);

}  // namespace balanced::service
