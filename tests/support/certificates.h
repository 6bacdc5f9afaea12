// Certificates for tests of TLS clients: a private CA and a server certificate it signs,
// for "localhost" and 127.0.0.1, made by the openssl command (Debian's openssl package).
#pragma once

#include <filesystem>
#include <string>

#include "support/process.h"

namespace balanced::testing {

// A CA (`<name>-ca.crt`) and a server certificate and key it signed (`<name>.crt`,
// `<name>.key`) in `dir`, valid two days, for `names` (subjectAltName syntax).
class TestCertificates {
 public:
  TestCertificates(std::filesystem::path dir, std::string name,
                   std::string names = "DNS:localhost,IP:127.0.0.1")
      : dir_(std::move(dir)), name_(std::move(name)), names_(std::move(names)) {}

  // Makes the files; false (with the reason in error()) when openssl fails.
  bool make() {
    std::filesystem::create_directories(dir_);
    const std::string openssl = "/usr/bin/openssl";
    const auto log = dir_ / (name_ + ".openssl.log");
    const auto extensions = dir_ / (name_ + ".ext");
    {
      std::ofstream out(extensions);
      out << "subjectAltName=" << names_ << "\n"
             "basicConstraints=CA:FALSE\n"
             "keyUsage=digitalSignature,keyEncipherment\n"
             "extendedKeyUsage=serverAuth,clientAuth\n";
    }
    const std::vector<std::vector<std::string>> steps{
        {openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", "/CN=" + name_ + " test CA", "-keyout", ca_key().string(), "-out",
         ca().string()},
        {openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
         "/CN=localhost", "-keyout", key().string(), "-out", (dir_ / (name_ + ".csr")).string()},
        {openssl, "x509", "-req", "-in", (dir_ / (name_ + ".csr")).string(), "-CA", ca().string(),
         "-CAkey", ca_key().string(), "-CAcreateserial", "-days", "2", "-extfile", extensions.string(),
         "-out", certificate().string()},
    };
    for (const auto& step : steps) {
      auto [code, output] = run_command(step, log);
      if (code != 0) {
        error_ = "openssl failed: " + output;
        return false;
      }
    }
    // redis-server reads the key as another user would: keep it readable.
    std::filesystem::permissions(key(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                            std::filesystem::perms::group_read | std::filesystem::perms::others_read);
    return true;
  }

  std::filesystem::path ca() const { return dir_ / (name_ + "-ca.crt"); }
  std::filesystem::path ca_key() const { return dir_ / (name_ + "-ca.key"); }
  std::filesystem::path certificate() const { return dir_ / (name_ + ".crt"); }
  std::filesystem::path key() const { return dir_ / (name_ + ".key"); }
  const std::string& error() const { return error_; }

 private:
  std::filesystem::path dir_;
  std::string name_;
  std::string names_;
  std::string error_;
};

}  // namespace balanced::testing
