// MySQL as a managed service is reached (DESIGN.md section 12): TLS by the URL's
// tls=disabled|required|verify-ca|verify-identity and tls-ca=FILE, against a real mariadbd
// with --ssl-* and a user that must come over TLS (REQUIRE SSL); a wrong CA or a name the
// certificate does not hold is refused; the password file is read for every connection.
#include <gtest/gtest.h>

#include <fstream>

#include "storage/mysql/mysql_db.h"
#include "storage/mysql/mysql_store.h"
#include "storage/open.h"
#include "support/certificates.h"
#include "support/servers.h"

namespace balanced::storage::mysql {
namespace {

TEST(MysqlUrl, TlsParametersAreParsedOrRefused) {
  auto plain = parse_url("mysql://u:p@db:3306/ledger");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain.value().tls, TlsMode::disabled);
  auto managed = parse_url("mysql://u@db.example.com:3306/ledger?tls=verify-identity&tls-ca=%2Fetc%2Frds.pem");
  ASSERT_TRUE(managed.ok()) << managed.error().detail;
  EXPECT_EQ(managed.value().tls, TlsMode::verify_identity);
  EXPECT_EQ(managed.value().tls_ca, "/etc/rds.pem");
  EXPECT_EQ(managed.value().database, "ledger");
  EXPECT_EQ(parse_url("mysql://u@db/ledger?tls=required").value().tls, TlsMode::required);
  EXPECT_EQ(parse_url("mysql://u@db/ledger?tls=verify-ca&tls-ca=ca.pem").value().tls, TlsMode::verify_ca);
  for (const char* bad : {"mysql://u@db/ledger?tls=yes", "mysql://u@db/ledger?tls=verify-ca",
                          "mysql://u@db/ledger?tls=verify-identity", "mysql://u@db/ledger?tls-ca=ca.pem",
                          "mysql://u@db/ledger?sslmode=required", "mysql://u@db/ledger?tls=required&tls-ca=",
                          "mysql://u@db/?tls=required", "mysql://u@db/ledger?tls=%zz"}) {
    auto refused = parse_url(bad);
    EXPECT_FALSE(refused.ok()) << bad;
  }
}

// DESIGN.md section 12: every connection error, read-only primary (MariaDB's and MySQL 8's
// codes), killed query and statement timeout is retried; the numbers above ~1880 are read
// by the server's flavor, since MariaDB and MySQL give them different meanings.
TEST(MysqlErrors, AreClassifiedByTheServersFlavor) {
  EXPECT_EQ(flavor_of("10.11.6-MariaDB-0+deb12u1"), Flavor::mariadb);
  EXPECT_EQ(flavor_of("8.0.36"), Flavor::mysql);
  EXPECT_EQ(flavor_of("8.0.35-0ubuntu0.22.04.1"), Flavor::mysql);
  for (Flavor flavor : {Flavor::mariadb, Flavor::mysql}) {
    for (unsigned both : {1040u, 1053u, 1062u, 1205u, 1213u, 1290u, 1317u, 1792u, 1836u, 1874u, 2006u,
                          2013u, 2002u, 2003u, 2055u}) {
      EXPECT_TRUE(is_transient(both, flavor)) << both;
    }
    for (unsigned never : {1045u, 1049u, 1064u, 1146u, 1406u, 2026u}) {
      EXPECT_FALSE(is_transient(never, flavor)) << never;
    }
  }
  for (unsigned read_only : {1290u, 1792u, 1836u, 1874u}) EXPECT_TRUE(is_read_only(read_only)) << read_only;
  EXPECT_FALSE(is_read_only(1213));
  // MariaDB's connection killed and max_statement_time; MySQL 8's max_execution_time, group
  // replication's refused commit, killed session and inactivity disconnect.
  EXPECT_TRUE(is_transient(1927, Flavor::mariadb));
  EXPECT_TRUE(is_transient(1969, Flavor::mariadb));
  EXPECT_FALSE(is_transient(1969, Flavor::mysql));
  for (unsigned mysql_only : {3024u, 3100u, 3101u, 3169u, 4031u}) {
    EXPECT_TRUE(is_transient(mysql_only, Flavor::mysql)) << mysql_only;
    EXPECT_FALSE(is_transient(mysql_only, Flavor::mariadb)) << mysql_only;
  }
}

class MysqlTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    certificates_ = new testing::TestCertificates(dir_->path() / "tls", "mariadb", "IP:127.0.0.1");
    other_ = new testing::TestCertificates(dir_->path() / "other", "other");
    ASSERT_TRUE(certificates_->make()) << certificates_->error();
    ASSERT_TRUE(other_->make()) << other_->error();
    // Listening on two loopback addresses, with a certificate for only the first.
    server_ = new testing::MariaDb(dir_->path() / "mariadb",
                                   testing::MariaDbTls{.certificate = certificates_->certificate(),
                                                       .key = certificates_->key(),
                                                       .ca = certificates_->ca(),
                                                       .bind_addresses = "127.0.0.1,127.0.0.2"});
    ASSERT_TRUE(server_->start()) << server_->error();
    auto [code, output] = server_->sql(
        "CREATE USER 'secure'@'%' IDENTIFIED BY 'tls-only' REQUIRE SSL;"
        "GRANT ALL ON *.* TO 'secure'@'%';"
        "CREATE DATABASE ledger_tls CHARACTER SET utf8mb4;");
    ASSERT_EQ(code, 0) << output;
  }
  static void TearDownTestSuite() {
    delete server_;
    delete other_;
    delete certificates_;
    delete dir_;
  }

  static std::string url(const std::string& host, const std::string& query) {
    return "mysql://secure:tls-only@" + host + ":" + std::to_string(server_->port()) + "/ledger_tls" + query;
  }
  static Result<std::unique_ptr<Connection>> open(const std::string& host, const std::string& query) {
    auto config = parse_url(url(host, query));
    EXPECT_TRUE(config.ok()) << config.error().detail;
    if (!config.ok()) return config.error();
    return Connection::open(config.value());
  }
  // The TLS version this connection speaks, empty when it is plain.
  static std::string tls_version(Connection& c) {
    auto rows = c.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
    if (!rows.ok() || !rows.value().next()) return "?";
    return rows.value().text(1);
  }
  std::string ca() const { return certificates_->ca().string(); }

  static testing::TempDir* dir_;
  static testing::TestCertificates* certificates_;
  static testing::TestCertificates* other_;
  static testing::MariaDb* server_;
};

testing::TempDir* MysqlTls::dir_ = nullptr;
testing::TestCertificates* MysqlTls::certificates_ = nullptr;
testing::TestCertificates* MysqlTls::other_ = nullptr;
testing::MariaDb* MysqlTls::server_ = nullptr;

TEST_F(MysqlTls, ARequireSslUserIsServedOnlyOverTls) {
  auto plain = open("127.0.0.1", "");
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.error().detail.find("Access denied"), std::string::npos) << plain.error().detail;
  EXPECT_EQ(plain.error().code, Code::internal);  // refused for good: a start stops on it

  for (const std::string& query : {std::string("?tls=required"), "?tls=verify-ca&tls-ca=" + ca(),
                                  "?tls=verify-identity&tls-ca=" + ca()}) {
    auto secure = open("127.0.0.1", query);
    ASSERT_TRUE(secure.ok()) << query << ": " << secure.error().detail;
    EXPECT_EQ(secure.value()->flavor(), Flavor::mariadb);
    const std::string version = tls_version(*secure.value());
    EXPECT_TRUE(version.starts_with("TLSv1.2") || version.starts_with("TLSv1.3")) << query << ": " << version;
  }
}

TEST_F(MysqlTls, ACertificateFromAnotherCaIsRefused) {
  for (const std::string mode : {"verify-ca", "verify-identity"}) {
    auto refused = open("127.0.0.1", "?tls=" + mode + "&tls-ca=" + other_->ca().string());
    ASSERT_FALSE(refused.ok()) << mode;
    EXPECT_EQ(refused.error().code, Code::internal) << refused.error().detail;
  }
  // `required` does not check the certificate: it only refuses a plain connection.
  EXPECT_TRUE(open("127.0.0.1", "?tls=required").ok());
}

TEST_F(MysqlTls, VerifyIdentityRefusesAHostTheCertificateDoesNotName) {
  // 127.0.0.2 is the same server, and its certificate names only 127.0.0.1.
  EXPECT_TRUE(open("127.0.0.2", "?tls=verify-ca&tls-ca=" + ca()).ok());
  auto refused = open("127.0.0.2", "?tls=verify-identity&tls-ca=" + ca());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Code::internal) << refused.error().detail;
}

TEST_F(MysqlTls, TheStoreServesOverTlsWithAPasswordFileReadForEveryConnection) {
  const auto password_file = dir_->path() / "db-password";
  {
    std::ofstream out(password_file);
    out << "tls-only\n";
  }
  const std::string store_url = "mysql://secure:wrong@127.0.0.1:" + std::to_string(server_->port()) +
                                "/ledger_tls?tls=verify-identity&tls-ca=" + ca();
  ASSERT_TRUE(migrate_store(store_url, password_file.string()).ok());
  StoreSettings settings{.url = store_url, .password_file = password_file.string()};
  auto opened = open_store(settings);
  ASSERT_TRUE(opened.ok()) << opened.error().detail;
  Store& store = *opened.value().store;
  ASSERT_TRUE(store.ping().ok());

  // The password is rotated at the server and in the file: new connections use the new one.
  ASSERT_EQ(server_->sql("ALTER USER 'secure'@'%' IDENTIFIED BY 'rotated' REQUIRE SSL;").first, 0);
  {
    std::ofstream out(password_file, std::ios::trunc);
    out << "rotated\n";
  }
  auto config = mysql_connection(store_url, password_file.string());
  ASSERT_TRUE(config.ok());
  auto fresh = Connection::open(config.value());
  ASSERT_TRUE(fresh.ok()) << fresh.error().detail;
  EXPECT_FALSE(tls_version(*fresh.value()).empty());
  ASSERT_EQ(server_->sql("ALTER USER 'secure'@'%' IDENTIFIED BY 'tls-only' REQUIRE SSL;").first, 0);
}

}  // namespace
}  // namespace balanced::storage::mysql
