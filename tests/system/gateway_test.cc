// Black-box tests of balance-gateway in front of real balanced processes: every row of
// the authorization table over TLS, rotation of keys and certificates, rate limits shared
// through a real Redis and a Redis Cluster, a stalled Redis, bounds and slow clients,
// upstream failures, a replica killed under load (no client-visible error, money
// conserved), SIGTERM; and DESIGN.md section 9 on balanced itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "support/http_client.h"
#include "support/process.h"
#include "support/servers.h"
#include "support/sse_reader.h"

namespace balanced::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using Headers = std::map<std::string, std::string>;

const std::string kIssuer = "https://issuer.test";
const std::string kAudience = "balanced";

// Runs a command, returns (exit code, stdout and stderr).
std::pair<int, std::string> run(const std::filesystem::path& dir, const std::vector<std::string>& argv) {
  static int counter = 0;
  return run_command(argv, dir / ("command-" + std::to_string(counter++) + ".log"));
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// A self-signed certificate for "localhost".
bool make_certificate(const std::filesystem::path& dir, const std::string& name) {
  const std::string command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
                              "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout " +
                              (dir / (name + ".key")).string() + " -out " + (dir / (name + ".crt")).string() +
                              " > " + (dir / (name + ".openssl.log")).string() + " 2>&1";
  return std::system(command.c_str()) == 0;
}

// balance-gateway on free ports; start() waits for its "serving" line.
class GatewayServer {
 public:
  GatewayServer(std::filesystem::path dir, std::vector<std::string> args) : dir_(std::move(dir)), args_(std::move(args)) {}
  // Runs the gateway through `wrapper` (a command that ends by exec'ing its arguments, so
  // the pid stays the gateway's): a mount namespace of its own, say.
  void set_wrapper(std::vector<std::string> wrapper) { wrapper_ = std::move(wrapper); }
  bool start() {
    admin_port_ = free_port();
    std::vector<std::string> argv = wrapper_;
    argv.insert(argv.end(), {BALANCE_GATEWAY_BINARY, "--listen", "127.0.0.1:0", "--admin-listen",
                             "127.0.0.1:" + std::to_string(admin_port_), "--jwt-issuer", kIssuer,
                             "--jwt-audience", kAudience});
    if (std::find(args_.begin(), args_.end(), "--threads") == args_.end()) {
      argv.insert(argv.end(), {"--threads", "2"});
    }
    argv.insert(argv.end(), args_.begin(), args_.end());
    static int instances = 0;  // one log file each: a reused one would hold an old port
    if (!process_.start(argv, dir_ / ("gateway-" + std::to_string(instances++) + ".log"))) return false;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string text = process_.log();
      const size_t serving = text.find("balance-gateway serving");
      const size_t at = text.find("\"listen\":\"127.0.0.1:", serving == std::string::npos ? 0 : serving);
      if (serving != std::string::npos && at != std::string::npos) {
        port_ = static_cast<uint16_t>(std::stoi(text.substr(at + 20)));
        return true;
      }
      if (!process_.running()) return false;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  uint16_t port() const { return port_; }
  uint16_t admin_port() const { return admin_port_; }
  Process& process() { return process_; }
  std::string log() const { return process_.log(); }

 private:
  std::filesystem::path dir_;
  std::vector<std::string> args_;
  std::vector<std::string> wrapper_;
  Process process_;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
};

json::object object_of(const HttpResponse& response) {
  boost::system::error_code ec;
  json::value value = json::parse(response.body, ec);
  return !ec && value.is_object() ? value.as_object() : json::object{};
}

std::string code_of(const HttpResponse& response) {
  auto o = object_of(response);
  return o.contains("code") && o["code"].is_string() ? std::string(o["code"].as_string()) : "";
}

// Keys, tokens and one balanced replica on SQLite, shared by the tests of a suite.
class GatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto& d = dir_->path();
    ASSERT_EQ(run(d, {BALANCECTL_BINARY, "keygen", "--alg", "RS256", "--kid", "rs-1", "--key-out",
                      (d / "rs-1.pem").string(), "--jwks-out", (d / "jwks.json").string()})
                  .first,
              0);
    ASSERT_EQ(run(d, {BALANCECTL_BINARY, "keygen", "--alg", "ES256", "--kid", "es-1", "--key-out",
                      (d / "es-1.pem").string(), "--jwks-out", (d / "jwks.json").string()})
                  .first,
              0);
    ASSERT_TRUE(make_certificate(d, "tls")) << "openssl req failed";
    // Risk rules for euros only: the other tests move dollars.
    std::ofstream(d / "risk.json") << R"([{"name":"eur-review","when":{"currency":"EUR","amountGte":100},"then":"review"}])";
    balanced_ = new BalancedServer(d, {"--risk-rules", (d / "risk.json").string()});
    ASSERT_TRUE(balanced_->start()) << balanced_->log();
    HttpClient direct(balanced_->port());
    for (const char* account : {"alice", "bob", "carol"}) {
      auto created = direct.request("POST", "/accounts",
                                    std::string("{\"accountNumber\":\"") + account + "\",\"initialBalance\":1000}");
      ASSERT_TRUE(created && created->status == 201);
    }
  }
  static void TearDownTestSuite() {
    delete balanced_;
    delete dir_;
  }

  static std::string token(const std::string& sub, const std::string& scope, const std::string& accounts,
                           const std::string& kid = "rs-1") {
    auto [code, output] = run(dir_->path(), {BALANCECTL_BINARY, "token", "--key", (dir_->path() / (kid + ".pem")).string(),
                                             "--kid", kid, "--sub", sub, "--scope", scope, "--accounts", accounts,
                                             "--iss", kIssuer, "--aud", kAudience, "--ttl", "600"});
    EXPECT_EQ(code, 0) << output;
    return trim(output);
  }
  static std::string upstream() { return "http://127.0.0.1:" + std::to_string(balanced_->port()); }
  static std::string ca() { return (dir_->path() / "tls.crt").string(); }

  std::vector<std::string> tls_args() {
    return {"--tls-cert", (dir_->path() / "tls.crt").string(), "--tls-key", (dir_->path() / "tls.key").string(),
            "--jwks", (dir_->path() / "jwks.json").string(), "--upstream", upstream()};
  }
  std::vector<std::string> plain_args() {
    return {"--jwks", (dir_->path() / "jwks.json").string(), "--upstream", upstream()};
  }

  static TempDir* dir_;
  static BalancedServer* balanced_;
};
TempDir* GatewayTest::dir_ = nullptr;
BalancedServer* GatewayTest::balanced_ = nullptr;

TEST_F(GatewayTest, EveryRowOfTheAuthorizationTableOverTls) {
  GatewayServer gateway(dir_->path(), tls_args());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient client(gateway.port(), ca());
  ASSERT_TRUE(client.connect()) << "TLS handshake failed";
  auto call = [&](const std::string& method, const std::string& target, const std::string& bearer,
                  const std::string& body = "", Headers headers = {}) {
    if (!bearer.empty()) headers["Authorization"] = "Bearer " + bearer;
    auto response = client.request(method, target, body, headers);
    EXPECT_TRUE(response) << method << " " << target;
    return response.value_or(HttpResponse{});
  };
  const std::string reader = token("alice", "balances:read", "alice");
  const std::string writer = token("alice", "transactions:write", "alice", "es-1");
  const std::string both = token("alice", "balances:read transactions:write", "alice");
  const std::string creator = token("ops", "accounts:write", "");
  const std::string admin = token("root", "admin", "");

  // Reads of an account: scope balances:read and the account in `accounts`.
  for (const std::string path : {"/accounts/alice", "/accounts/alice/balance", "/accounts/alice/transactions",
                                  "/accounts/alice/statement?from=2026-01-01&to=2026-01-31"}) {
    EXPECT_EQ(call("GET", path, reader).status, 200) << path;
    EXPECT_EQ(call("GET", path, admin).status, 200) << path;
    auto scope = call("GET", path, writer);
    EXPECT_EQ(scope.status, 403) << path;
    EXPECT_NE(scope.header("www-authenticate").find("insufficient_scope"), std::string::npos);
    auto theirs = call("GET", "/accounts/bob" + path.substr(std::string("/accounts/alice").size()), reader);
    EXPECT_EQ(theirs.status, 403) << path;
    EXPECT_EQ(code_of(theirs), "forbidden");
  }
  // A transfer: transactions:write and the source in `accounts`.
  auto mine = call("POST", "/accounts/transactions", writer,
                   R"({"transactionId":"gw-t1","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":10})");
  EXPECT_EQ(mine.status, 201) << mine.body;
  EXPECT_EQ(call("POST", "/accounts/transactions", writer,
                 R"({"transactionId":"gw-t2","sourceAccountNumber":"bob","destinationAccountNumber":"alice","amount":10})")
                .status,
            403);
  EXPECT_EQ(call("POST", "/accounts/transactions", reader,
                 R"({"transactionId":"gw-t3","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":10})")
                .status,
            403);
  EXPECT_EQ(call("POST", "/accounts/transactions", admin,
                 R"({"transactionId":"gw-t4","sourceAccountNumber":"carol","destinationAccountNumber":"bob","amount":10})")
                .status,
            201);
  auto malformed = call("POST", "/accounts/transactions", writer, R"({"sourceAccountNumber":)");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(code_of(malformed), "invalid_request");
  // Nothing moved for the refused ones: bob got 10 from alice and 10 from carol.
  auto bob = call("GET", "/accounts/bob/balance", admin);
  EXPECT_EQ(object_of(bob)["balance"], json::value(1020)) << bob.body;
  // GET /transactions/{id}: balances:read, and a party of it in `accounts`.
  EXPECT_EQ(call("GET", "/transactions/gw-t1", both).status, 200);
  auto not_theirs = call("GET", "/transactions/gw-t4", both);
  EXPECT_EQ(not_theirs.status, 403) << not_theirs.body;
  EXPECT_EQ(not_theirs.body.find("carol"), std::string::npos);  // nothing of it leaks
  EXPECT_EQ(call("GET", "/transactions/gw-t4", admin).status, 200);
  EXPECT_EQ(call("GET", "/transactions/no-such-id", both).status, 404);
  EXPECT_EQ(call("GET", "/transactions/gw-t1", writer).status, 403);
  // A batch: transactions:write, and every item's source the principal's.
  const std::string mine_batch = R"({"transfers":[{"transactionId":"gw-b1","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":1},{"transactionId":"gw-b2","sourceAccountNumber":"alice","destinationAccountNumber":"carol","amount":1}]})";
  const std::string mixed_batch = R"({"transfers":[{"transactionId":"gw-b3","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":1},{"transactionId":"gw-b4","sourceAccountNumber":"bob","destinationAccountNumber":"alice","amount":1}]})";
  auto batch = call("POST", "/accounts/transactions/batch", writer, mine_batch);
  EXPECT_EQ(batch.status, 200) << batch.body;
  EXPECT_EQ(object_of(batch)["committed"], json::value(2)) << batch.body;
  EXPECT_EQ(call("POST", "/accounts/transactions/batch", writer, mixed_batch).status, 403);
  EXPECT_EQ(call("POST", "/accounts/transactions/batch", reader, mine_batch).status, 403);
  EXPECT_EQ(call("POST", "/accounts/transactions/batch", writer, R"({"transfers":[{"amount":1}]})").status, 403);
  EXPECT_EQ(call("GET", "/transactions/gw-b4", admin).status, 404);  // the refused batch changed nothing
  // Creating accounts: accounts:write.
  EXPECT_EQ(call("POST", "/accounts", creator, R"({"accountNumber":"dave"})").status, 201);
  EXPECT_EQ(call("POST", "/accounts", both, R"({"accountNumber":"erin"})").status, 403);
  // No token, a bad token.
  auto none = call("GET", "/accounts/alice/balance", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("www-authenticate"), "Bearer realm=\"balanced\"");
  EXPECT_FALSE(none.header("x-request-id").empty());
  std::string tampered = reader;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  auto bad = call("GET", "/accounts/alice/balance", tampered);
  EXPECT_EQ(bad.status, 401);
  EXPECT_NE(bad.header("www-authenticate").find("error=\"invalid_token\""), std::string::npos);
  EXPECT_EQ(call("GET", "/accounts/alice/balance", "", "", {{"Authorization", "Basic YTpi"}}).status, 401);
  // Not on the public listener.
  for (const std::string path : {"/metrics", "/readyz", "/healthz", "/nowhere"}) {
    EXPECT_EQ(call("GET", path, admin).status, 404) << path;
  }
  // The admin listener has them.
  HttpClient admin_client(gateway.admin_port());
  auto metrics = admin_client.request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("balance_gateway_auth_failures_total{reason=\"bad_signature\"} 1"), std::string::npos);
  EXPECT_NE(metrics->body.find("balance_gateway_http_requests_total"), std::string::npos);
  EXPECT_EQ(admin_client.request("GET", "/readyz")->status, 200);
  EXPECT_EQ(admin_client.request("GET", "/accounts/alice")->status, 404);
  // The access log has a line per request and no token.
  EXPECT_EQ(gateway.log().find(reader.substr(reader.size() - 40)), std::string::npos);
  EXPECT_NE(gateway.log().find("\"user.id\":\"alice\""), std::string::npos);
  EXPECT_EQ(gateway.process().terminate(), 0);
}

TEST_F(GatewayTest, SpoofedIdentityHeadersUnlockNothing) {
  GatewayServer gateway(dir_->path(), plain_args());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient client(gateway.port());
  const std::string reader = token("alice", "balances:read", "alice");
  for (const std::string header : {"X-Auth-Subject", "X-User", "X-User-Id", "X-Forwarded-User", "X-Operator"}) {
    auto response = client.request("GET", "/accounts/bob/balance", "",
                                   {{"Authorization", "Bearer " + reader}, {header, "root"}, {"X-Auth-Scope", "admin"}});
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 403) << header;
    auto anonymous = client.request("GET", "/accounts/bob/balance", "", {{header, "root"}});
    EXPECT_EQ(anonymous->status, 401) << header;
  }
  // X-Request-Id: kept when well-formed, replaced when not.
  auto kept = client.request("GET", "/accounts/alice/balance", "",
                             {{"Authorization", "Bearer " + reader}, {"X-Request-Id", "req-123.abc_DEF"}});
  EXPECT_EQ(kept->header("x-request-id"), "req-123.abc_DEF");
  auto replaced = client.request("GET", "/accounts/alice/balance", "",
                                 {{"Authorization", "Bearer " + reader}, {"X-Request-Id", "bad id!"}});
  EXPECT_NE(replaced->header("x-request-id"), "bad id!");
  EXPECT_EQ(replaced->header("x-request-id").size(), 32u);
  EXPECT_FALSE(kept->header("ratelimit").empty());
  EXPECT_FALSE(kept->header("ratelimit-policy").empty());
  EXPECT_EQ(gateway.process().terminate(), 0);
}

// Requests balanced has counted for one route, from its /metrics (all status classes).
double balanced_requests(uint16_t port, const std::string& route) {
  HttpClient direct(port);
  auto metrics = direct.request("GET", "/metrics");
  double total = 0;
  if (!metrics) return -1;
  std::istringstream lines(metrics->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("balanced_http_requests_total{", 0) == 0 && line.find("route=\"" + route + "\"") != std::string::npos) {
      total += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return total;
}

TEST_F(GatewayTest, ABodyThatIsNotIJsonStopsAtTheGateway) {
  GatewayServer gateway(dir_->path(), plain_args());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient client(gateway.port());
  const std::string writer = token("alice", "transactions:write accounts:write", "alice");
  const Headers auth{{"Authorization", "Bearer " + writer}};
  const double batches = balanced_requests(balanced_->port(), "post_transaction_batch");
  const double creates = balanced_requests(balanced_->port(), "create_account");
  // Last-wins would have authorized alice's list and let balanced read another.
  auto batch = client.request(
      "POST", "/accounts/transactions/batch",
      R"({"transfers":[{"sourceAccountNumber":"bob","destinationAccountNumber":"alice","amount":1}],)"
      R"("transfers":[{"sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":1}]})",
      auth);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->status, 400);
  EXPECT_EQ(code_of(*batch), "invalid_request");
  auto single = client.request(
      "POST", "/accounts/transactions",
      R"({"sourceAccountNumber":"bob","destinationAccountNumber":"alice","amount":1,"sourceAccountNumber":"alice"})", auth);
  ASSERT_TRUE(single);
  EXPECT_EQ(single->status, 400);
  auto account = client.request("POST", "/accounts", R"({"accountNumber":"dave","accountNumber":"erin"})", auth);
  ASSERT_TRUE(account);
  EXPECT_EQ(account->status, 400);
  EXPECT_EQ(code_of(*account), "invalid_request");
  EXPECT_NE(account->body.find("repeated"), std::string::npos) << account->body;
  // None of them reached the replica.
  EXPECT_EQ(balanced_requests(balanced_->port(), "post_transaction_batch"), batches);
  EXPECT_EQ(balanced_requests(balanced_->port(), "create_account"), creates);
  EXPECT_EQ(gateway.process().terminate(), 0);
}

TEST_F(GatewayTest, DepositsGoToAnyAccountWithdrawalsOnlyFromTheTokensOwn) {
  GatewayServer gateway(dir_->path(), plain_args());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient client(gateway.port());
  auto call = [&](const std::string& target, const std::string& bearer, const std::string& body) {
    auto response = client.request("POST", target, body, {{"Authorization", "Bearer " + bearer}});
    EXPECT_TRUE(response) << target;
    return response.value_or(HttpResponse{});
  };
  const std::string rail = token("ach-rail", "deposits:write", "nobody");
  const std::string alice = token("alice", "withdrawals:write", "alice");
  const std::string writer = token("alice", "transactions:write", "alice");
  HttpClient direct(balanced_->port());
  auto bob_balance = [&direct] {
    auto bob = direct.request("GET", "/accounts/bob/balance?consistency=strong");
    return bob ? object_of(*bob)["balance"].as_int64() : -1;
  };
  const int64_t bob_before = bob_balance();
  EXPECT_EQ(call("/accounts/bob/deposits", rail, R"({"transactionId":"gw-dep-1","amount":7})").status, 201);
  EXPECT_EQ(call("/accounts/carol/deposits", rail, R"({"transactionId":"gw-dep-2","amount":7})").status, 201);
  EXPECT_EQ(call("/accounts/alice/withdrawals", rail, R"({"transactionId":"gw-wd-0","amount":1})").status, 403);
  EXPECT_EQ(call("/accounts/alice/withdrawals", alice, R"({"transactionId":"gw-wd-1","amount":1})").status, 201);
  auto someone_elses = call("/accounts/bob/withdrawals", alice, R"({"transactionId":"gw-wd-2","amount":1})");
  EXPECT_EQ(someone_elses.status, 403);
  EXPECT_EQ(call("/accounts/alice/deposits", alice, R"({"transactionId":"gw-dep-3","amount":1})").status, 403);
  EXPECT_EQ(call("/accounts/alice/deposits", writer, R"({"transactionId":"gw-dep-4","amount":1})").status, 403);
  // Refused ones changed nothing: bob's balance moved by the deposit only.
  EXPECT_EQ(bob_balance(), bob_before + 7);
  // PATCH is an administrator's: accounts:admin, not accounts:write nor the owner.
  auto patch = [&](const std::string& bearer) {
    auto response = client.request("PATCH", "/accounts/carol", R"({"metadata":{"note":"gw"}})",
                                   {{"Authorization", "Bearer " + bearer}, {"Content-Type", "application/json"}});
    return response ? response->status : 0;
  };
  EXPECT_EQ(patch(token("carol", "accounts:write balances:read", "carol")), 403);
  EXPECT_EQ(patch(token("ops", "accounts:admin", "nobody")), 200);
  EXPECT_EQ(gateway.process().terminate(), 0);
}

TEST_F(GatewayTest, HoldsAreSettledAndTransactionsRefundedByTheirPayeeOnly) {
  GatewayServer gateway(dir_->path(), plain_args());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient client(gateway.port());
  auto call = [&](const std::string& method, const std::string& target, const std::string& bearer,
                  const std::string& body, Headers extra = {}) {
    extra["Authorization"] = "Bearer " + bearer;
    auto response = client.request(method, target, body, extra);
    EXPECT_TRUE(response) << target;
    return response.value_or(HttpResponse{});
  };
  const std::string payer = token("alice", "transactions:write balances:read", "alice");
  const std::string payee = token("bob", "transactions:write balances:read", "bob");
  const std::string stranger = token("carol", "transactions:write balances:read", "carol");
  const std::string admin = token("ops", "admin", "nobody");
  const std::string hold = R"({"holdId":"gw-h1","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":5})";
  EXPECT_EQ(call("POST", "/holds", payee, hold).status, 403);  // not the payer's to place
  ASSERT_EQ(call("POST", "/holds", payer, hold).status, 201);
  EXPECT_EQ(call("GET", "/holds/gw-h1", payer, "").status, 200);
  EXPECT_EQ(call("GET", "/holds/gw-h1", stranger, "").status, 403);
  EXPECT_EQ(call("GET", "/accounts/bob/holds", payee, "").status, 200);
  EXPECT_EQ(call("GET", "/accounts/bob/holds", payer, "").status, 403);
  // The payer cannot capture, even naming the payee in the header balanced trusts: the
  // gateway strips it and sets its own.
  auto own = call("POST", "/holds/gw-h1/capture", payer, R"({"captureId":"gw-c0"})", {{"X-Acting-For", "bob"}});
  EXPECT_EQ(own.status, 403) << own.body;
  EXPECT_EQ(call("POST", "/holds/gw-h1/void", stranger, R"({"voidId":"gw-v0"})").status, 403);
  EXPECT_EQ(call("POST", "/holds/gw-none/capture", payee, R"({"captureId":"gw-c9"})").status, 404);
  HttpClient direct(balanced_->port());
  auto status = [&direct] { return object_of(*direct.request("GET", "/holds/gw-h1"))["status"]; };
  EXPECT_EQ(status(), json::value("pending"));  // nothing changed
  auto captured = call("POST", "/holds/gw-h1/capture", payee, R"({"captureId":"gw-c1","amount":3})");
  ASSERT_EQ(captured.status, 201) << captured.body;
  EXPECT_EQ(status(), json::value("captured"));
  // Refunds: the payee's (the original's destination), or an administrator's.
  EXPECT_EQ(call("POST", "/transactions/gw-c1/refunds", payer, R"({"refundId":"gw-r0"})").status, 403);
  EXPECT_EQ(call("POST", "/transactions/gw-c1/refunds", payee, R"({"refundId":"gw-r1","amount":1})").status, 201);
  EXPECT_EQ(call("POST", "/transactions/gw-c1/refunds", admin, R"({"refundId":"gw-r2","amount":1})").status, 201);
  EXPECT_EQ(call("POST", "/transactions/gw-none/refunds", payee, R"({"refundId":"gw-r3"})").status, 404);
  EXPECT_EQ(call("POST", "/transactions/gw-c1/refunds", token("bob", "balances:read", "bob"), R"({"refundId":"gw-r4"})")
                .status,
            403);
  EXPECT_EQ(object_of(*direct.request("GET", "/transactions/gw-c1"))["refundedAmount"], json::value(2));
  EXPECT_EQ(gateway.process().terminate(), 0);
}

// A risk review's hold (DESIGN.md section 11): listed for, and captured by, risk:review
// or admin only; its payee may void it, never capture it.
TEST_F(GatewayTest, AReviewHoldIsCapturedByARiskReviewerOnly) {
  GatewayServer gateway(dir_->path(), plain_args());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient direct(balanced_->port());
  for (const auto& [account, balance] : {std::pair{"eur-payer", 1000}, std::pair{"eur-payee", 0}}) {
    auto created = direct.request("POST", "/accounts", std::string(R"({"accountNumber":")") + account +
                                                           R"(","currency":"EUR","initialBalance":)" + std::to_string(balance) + "}");
    ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "");
  }
  HttpClient client(gateway.port());
  auto call = [&](const std::string& method, const std::string& target, const std::string& bearer,
                  const std::string& body = "") {
    auto response = client.request(method, target, body, {{"Authorization", "Bearer " + bearer}});
    EXPECT_TRUE(response) << target;
    return response.value_or(HttpResponse{});
  };
  const std::string payer = token("pat", "transactions:write balances:read", "eur-payer");
  const std::string payee = token("pia", "transactions:write balances:read", "eur-payee");
  // A reviewer's own accounts count for nothing here: it settles review holds only.
  const std::string reviewer = token("rita", "risk:review", "eur-payee");
  const auto pay = [&](const std::string& id) {
    return call("POST", "/accounts/transactions", payer,
                R"({"transactionId":")" + id + R"(","sourceAccountNumber":"eur-payer","destinationAccountNumber":"eur-payee","amount":300})");
  };
  auto held = pay("eur-1");
  ASSERT_EQ(held.status, 202) << held.body;
  EXPECT_NE(held.body.find("\"reviewRule\":\"eur-review\""), std::string::npos) << held.body;
  EXPECT_EQ(call("GET", "/holds?reviewRule=*", payee).status, 403);
  auto queue = call("GET", "/holds?reviewRule=*&status=pending", reviewer);
  EXPECT_EQ(queue.status, 200) << queue.body;
  EXPECT_NE(queue.body.find("eur-1"), std::string::npos) << queue.body;
  EXPECT_EQ(call("POST", "/holds/eur-1/capture", payee, R"({"captureId":"eur-1c0"})").status, 403);
  EXPECT_EQ(call("POST", "/holds/eur-1/capture", payer, R"({"captureId":"eur-1c1"})").status, 403);
  auto captured = call("POST", "/holds/eur-1/capture", reviewer, R"({"captureId":"eur-1c2"})");
  EXPECT_EQ(captured.status, 201) << captured.body;
  // The payee may let one go.
  ASSERT_EQ(pay("eur-2").status, 202);
  EXPECT_EQ(call("POST", "/holds/eur-2/void", payee, R"({"voidId":"eur-2v"})").status, 201);
  // A reviewer acts for no account: an ordinary hold is not theirs to settle, even one
  // paying the account its token names.
  const std::string plain = R"({"holdId":"eur-h","sourceAccountNumber":"eur-payer","destinationAccountNumber":"eur-payee","amount":5})";
  ASSERT_EQ(call("POST", "/holds", payer, plain).status, 201);
  EXPECT_EQ(call("POST", "/holds/eur-h/capture", reviewer, R"({"captureId":"eur-hc"})").status, 403);
  EXPECT_EQ(call("POST", "/accounts/transactions", reviewer,
                 R"({"transactionId":"eur-x","sourceAccountNumber":"eur-payer","destinationAccountNumber":"eur-payee","amount":1})")
                .status,
            403);
  EXPECT_EQ(gateway.process().terminate(), 0);
}

// The change feed shows every account's money: events:read or admin, never an account
// holder's token (DESIGN.md section 11).
TEST_F(GatewayTest, TheEventFeedNeedsEventsReadOrAdmin) {
  GatewayServer gateway(dir_->path(), plain_args());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient client(gateway.port());
  auto get = [&](const std::string& bearer) {
    auto response = client.request("GET", "/events?limit=1", "", {{"Authorization", "Bearer " + bearer}});
    EXPECT_TRUE(response);
    return response.value_or(HttpResponse{});
  };
  EXPECT_EQ(get(token("alice", "balances:read transactions:write", "alice")).status, 403);
  auto reader = get(token("feed", "events:read", "nobody"));
  EXPECT_EQ(reader.status, 200) << reader.body;
  EXPECT_NE(reader.body.find("\"events\":["), std::string::npos) << reader.body;
  EXPECT_EQ(get(token("ops", "admin", "nobody")).status, 200);
  // The volumes report: reports:read (every account's volumes), or admin.
  const std::string volumes = "/reports/volumes?currency=USD&from=2026-01-01&to=2026-01-02";
  auto report = [&](const std::string& bearer) {
    auto response = client.request("GET", volumes, "", {{"Authorization", "Bearer " + bearer}});
    EXPECT_TRUE(response);
    return response.value_or(HttpResponse{}).status;
  };
  EXPECT_EQ(report(token("alice", "balances:read", "alice")), 403);
  EXPECT_EQ(report(token("feed", "events:read", "nobody")), 403);
  EXPECT_EQ(report(token("finance", "reports:read", "nobody")), 200);
  EXPECT_EQ(report(token("ops", "admin", "nobody")), 200);
  auto anonymous = client.request("GET", "/events");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_EQ(gateway.process().terminate(), 0);
  // A long-poll gets its wait and 5 s before the upstream timeout (1 s here): an empty
  // page after 2 s, not a 504.
  auto args = plain_args();
  args.insert(args.end(), {"--upstream-timeout-ms", "1000"});
  GatewayServer short_timeout(dir_->path(), args);
  ASSERT_TRUE(short_timeout.start()) << short_timeout.log();
  HttpClient patient(short_timeout.port());
  const std::string feed = token("feed", "events:read", "nobody");
  auto last = patient.request("GET", "/events?limit=1000", "", {{"Authorization", "Bearer " + feed}});
  ASSERT_TRUE(last);
  ASSERT_EQ(last->status, 200) << last->body;
  const auto next = json::parse(last->body).at("next").as_int64();
  auto polled = patient.request("GET", "/events?after=" + std::to_string(next + 1'000'000) + "&wait=2", "",
                                {{"Authorization", "Bearer " + feed}});
  ASSERT_TRUE(polled);
  EXPECT_EQ(polled->status, 200) << polled->body;
  EXPECT_EQ(short_timeout.process().terminate(), 0);
}

// DESIGN.md section 11: GET /events/stream passes through unbuffered, free of the upstream
// timeout, and is closed when the replica stays silent past two heartbeats.
TEST_F(GatewayTest, AnEventStreamPassesThroughPastTheUpstreamTimeout) {
  auto args = plain_args();
  args.insert(args.end(), {"--upstream-timeout-ms", "1000"});
  GatewayServer gateway(dir_->path(), args);
  ASSERT_TRUE(gateway.start()) << gateway.log();
  const Headers feed = {{"Authorization", "Bearer " + token("feed", "events:read", "nobody")}};
  HttpClient client(gateway.port());
  auto holder = client.request("GET", "/events/stream", "",
                               {{"Authorization", "Bearer " + token("alice", "balances:read", "alice")}});
  ASSERT_TRUE(holder);
  EXPECT_EQ(holder->status, 403) << holder->body;
  auto last = client.request("GET", "/events?limit=1000", "", feed);
  ASSERT_TRUE(last);
  ASSERT_EQ(last->status, 200) << last->body;
  int64_t next = json::parse(last->body).at("next").as_int64();
  for (auto page = last; json::parse(page->body).at("events").as_array().size() == 1000;) {
    page = client.request("GET", "/events?limit=1000&after=" + std::to_string(next), "", feed);
    ASSERT_TRUE(page);
    next = json::parse(page->body).at("next").as_int64();
  }
  HttpClient streaming(gateway.port());
  SseReader reader(streaming);
  auto head = reader.open("/events/stream?after=" + std::to_string(next), feed);
  ASSERT_TRUE(head);
  ASSERT_EQ(head->status, 200) << head->body;
  EXPECT_EQ(head->header("content-type"), "text/event-stream");
  // Past the upstream timeout, a deposit made on balanced arrives through the gateway.
  std::this_thread::sleep_for(1500ms);
  HttpClient direct(balanced_->port());
  ASSERT_EQ(direct.request("POST", "/accounts/alice/deposits", R"({"transactionId":"gw-sse-1","amount":1})")->status,
            201);
  std::optional<SseMessage> event;
  while ((event = reader.next()) && event->comment) {
  }
  ASSERT_TRUE(event) << gateway.log();
  EXPECT_EQ(event->id, std::to_string(next + 1));
  EXPECT_EQ(event->event, "transaction.deposit");
  EXPECT_NE(event->data.find("\"gw-sse-1\""), std::string::npos) << event->data;
  EXPECT_EQ(gateway.process().terminate(), 0);
  // A replica silent for --upstream-stream-idle-ms (balanced's heartbeat is 15 s): the
  // gateway ends the stream, and the client reconnects.
  args.insert(args.end(), {"--upstream-stream-idle-ms", "500"});
  GatewayServer impatient(dir_->path(), args);
  ASSERT_TRUE(impatient.start()) << impatient.log();
  HttpClient cut(impatient.port());
  SseReader cut_reader(cut);
  ASSERT_EQ(cut_reader.open("/events/stream?after=" + std::to_string(next + 1), feed)->status, 200);
  while (cut_reader.next()) {
  }
  EXPECT_TRUE(cut_reader.ended());
  EXPECT_EQ(impatient.process().terminate(), 0);
}

TEST_F(GatewayTest, KeysAndCertificatesRotateWithoutARestart) {
  const auto& d = dir_->path();
  // Its own JWKS file, so the rotation does not touch the suite's.
  std::filesystem::copy_file(d / "jwks.json", d / "rotating.json", std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(make_certificate(d, "rotating-old"));
  ASSERT_TRUE(make_certificate(d, "rotating-new"));
  std::filesystem::copy_file(d / "rotating-old.crt", d / "live.crt", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(d / "rotating-old.key", d / "live.key", std::filesystem::copy_options::overwrite_existing);
  GatewayServer gateway(d, {"--tls-cert", (d / "live.crt").string(), "--tls-key", (d / "live.key").string(), "--jwks",
                            (d / "rotating.json").string(), "--upstream", upstream()});
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient old_trust(gateway.port(), (d / "rotating-old.crt").string());
  const std::string old_token = token("alice", "balances:read", "alice");
  EXPECT_EQ(old_trust.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + old_token}})->status, 200);

  // A new key appears in the JWKS: its tokens work within a couple of seconds.
  ASSERT_EQ(run(d, {BALANCECTL_BINARY, "keygen", "--alg", "EdDSA", "--kid", "ed-new", "--key-out",
                    (d / "ed-new.pem").string(), "--jwks-out", (d / "rotating.json").string()})
                .first,
            0);
  const std::string new_token = token("alice", "balances:read", "alice", "ed-new");
  int status = 0;
  for (int i = 0; i < 40 && status != 200; ++i) {
    old_trust.close();
    auto response = old_trust.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + new_token}});
    status = response ? response->status : 0;
    if (status != 200) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 200) << "the new key was not picked up";
  // The old keys leave the JWKS: their tokens stop at once, cached or not.
  ASSERT_EQ(run(d, {BALANCECTL_BINARY, "keygen", "--alg", "EdDSA", "--kid", "ed-newer", "--key-out",
                    (d / "ed-newer.pem").string(), "--jwks-out", (d / "only-new.json").string()})
                .first,
            0);
  std::filesystem::rename(d / "only-new.json", d / "rotating.json");
  for (int i = 0; i < 40 && status != 401; ++i) {
    auto response = old_trust.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + old_token}});
    status = response ? response->status : 0;
    if (status != 401) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 401) << "a removed key still verified";

  // New certificate files are picked up by themselves, as a Kubernetes Secret volume
  // updates them (no signal): new connections see the new certificate.
  HttpClient new_trust(gateway.port(), (d / "rotating-new.crt").string());
  EXPECT_FALSE(new_trust.connect());
  std::filesystem::copy_file(d / "rotating-new.crt", d / "live.crt.next", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(d / "rotating-new.key", d / "live.key.next", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(d / "live.crt.next", d / "live.crt");
  std::filesystem::rename(d / "live.key.next", d / "live.key");
  bool reloaded = false;
  for (int i = 0; i < 50 && !reloaded; ++i) {
    std::this_thread::sleep_for(100ms);
    reloaded = new_trust.connect();
  }
  EXPECT_TRUE(reloaded) << gateway.log();
  // A broken pair, noticed or on SIGHUP, keeps the one in use.
  { std::ofstream(d / "live.key") << "not a key"; }
  std::this_thread::sleep_for(1500ms);
  ::kill(gateway.process().pid(), SIGHUP);
  std::this_thread::sleep_for(300ms);
  HttpClient still(gateway.port(), (d / "rotating-new.crt").string());
  EXPECT_TRUE(still.connect());
  // SIGHUP rereads the files at once: the old pair again.
  std::filesystem::copy_file(d / "rotating-old.key", d / "live.key", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(d / "rotating-old.crt", d / "live.crt", std::filesystem::copy_options::overwrite_existing);
  ::kill(gateway.process().pid(), SIGHUP);
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) {
    std::this_thread::sleep_for(100ms);
    HttpClient old_again(gateway.port(), (d / "rotating-old.crt").string());
    back = old_again.connect();
  }
  EXPECT_TRUE(back) << gateway.log();
  EXPECT_EQ(gateway.process().terminate(), 0) << gateway.log();
}

// A JWKS URL: refetched early when a token names an unknown kid, at most once per
// --jwks-min-refetch-s however many such tokens come.
TEST_F(GatewayTest, AJwksUrlIsRefetchedOnAnUnknownKidAtARateLimit) {
  const auto& d = dir_->path();
  const auto served = d / "served";
  std::filesystem::create_directories(served);
  std::filesystem::copy_file(d / "jwks.json", served / "jwks.json", std::filesystem::copy_options::overwrite_existing);
  const uint16_t port = free_port();
  Process web;
  ASSERT_TRUE(web.start({find_program("python3"), "-m", "http.server", "--bind", "127.0.0.1", std::to_string(port),
                         "--directory", served.string()},
                        d / "web.log"));
  ASSERT_TRUE(wait_until(web, 20000, [&] { return port_open(port); })) << web.log();
  GatewayServer gateway(d, {"--jwks", "http://127.0.0.1:" + std::to_string(port) + "/jwks.json", "--jwks-refresh-s",
                            "3600", "--jwks-min-refetch-s", "2", "--upstream", upstream()});
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient client(gateway.port());
  ASSERT_EQ(run(d, {BALANCECTL_BINARY, "keygen", "--alg", "ES256", "--kid", "url-new", "--key-out",
                    (d / "url-new.pem").string(), "--jwks-out", (served / "jwks.json").string()})
                .first,
            0);
  const std::string fresh = token("alice", "balances:read", "alice", "url-new");
  int status = 0;
  const auto started = std::chrono::steady_clock::now();
  while (status != 200 && std::chrono::steady_clock::now() - started < 10s) {
    status = client.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + fresh}})->status;
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 200) << gateway.log();
  // A flood of unknown kids: a handful of fetches, not one per token.
  HttpClient admin(gateway.admin_port());
  auto reloads = [&] {
    const std::string body = admin.request("GET", "/metrics")->body;
    const std::string name = "balance_gateway_jwks_reloads_total{result=\"ok\"} ";
    const size_t at = body.find(name);
    return at == std::string::npos ? -1 : std::stoi(body.substr(at + name.size()));
  };
  const int before = reloads();
  ASSERT_EQ(run(d, {BALANCECTL_BINARY, "keygen", "--alg", "ES256", "--kid", "never-published", "--key-out",
                    (d / "never.pem").string(), "--jwks-out", (d / "never.json").string()})
                .first,
            0);
  const std::string unknown = token("alice", "balances:read", "alice", "never");
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(client.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + unknown}})->status, 401);
    std::this_thread::sleep_for(25ms);
  }
  const int after = reloads();
  EXPECT_LE(after - before, 2) << "one refetch per 2 s at most over about 1 s";
  EXPECT_EQ(gateway.process().terminate(), 0);
  web.terminate();
}

// A client that waits for 100 Continue gets it from the gateway, and the balanced behind
// it never sees the Expect (its own 100 would reach the gateway's upstream client as if
// it were the answer).
TEST_F(GatewayTest, AnExpectContinueIsAnsweredAtTheGateway) {
  GatewayServer gateway(dir_->path(), plain_args());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  const std::string writer = token("alice", "transactions:write", "alice");
  const std::string body =
      R"({"transactionId":"gw-expect-1","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":1})";
  HttpClient client(gateway.port(), 3000);
  ASSERT_TRUE(client.send_raw("POST /accounts/transactions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                              writer + "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  auto interim = client.read_response();
  ASSERT_TRUE(interim) << "no 100 Continue from the gateway";
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.send_raw(body));
  auto answer = client.read_response();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 201) << answer->body;
  EXPECT_NE(answer->body.find("gw-expect-1"), std::string::npos) << answer->body;
}

TEST_F(GatewayTest, BoundsAndSlowClients) {
  GatewayServer gateway(dir_->path(), [&] {
    auto args = plain_args();
    for (std::string a : {"--head-timeout-ms", "400", "--idle-timeout-ms", "700", "--max-connections", "4"}) args.push_back(a);
    return args;
  }());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  const std::string writer = token("alice", "transactions:write", "alice");
  {
    HttpClient client(gateway.port());
    ASSERT_TRUE(client.send_raw("GET /accounts/alice HTTP/1.1\r\nHost: x\r\nX-Request-Id: big-1\r\nX-Big: " +
                                std::string(20000, 'h') + "\r\n\r\n"));
    auto head = client.read_response();
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 431);
    EXPECT_FALSE(head->header("x-request-id").empty());
  }
  {
    HttpClient client(gateway.port());
    auto body = client.request("POST", "/accounts/transactions", std::string(70 * 1024, 'x'),
                               {{"Authorization", "Bearer " + writer}});
    ASSERT_TRUE(body);
    EXPECT_EQ(body->status, 413);
    EXPECT_EQ(code_of(*body), "payload_too_large");
  }
  {
    // A head that trickles in is cut off; so is a connection that sends nothing.
    HttpClient slow(gateway.port(), 3000);
    ASSERT_TRUE(slow.send_raw("GET /accounts/alice HTTP/1.1\r\nHost: x\r\n"));
    const auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(slow.closed_by_server());
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2500ms);
    HttpClient idle(gateway.port(), 3000);
    ASSERT_TRUE(idle.connect());
    EXPECT_TRUE(idle.closed_by_server());
  }
  {
    // Past --max-connections a new connection is closed at once; the others carry on.
    std::vector<std::unique_ptr<HttpClient>> held;
    for (int i = 0; i < 4; ++i) {
      held.push_back(std::make_unique<HttpClient>(gateway.port(), 2000));
      ASSERT_TRUE(held.back()->send_raw("GET /accounts/alice/balance HTTP/1.1\r\nHost: x\r\n\r\n"));
      ASSERT_TRUE(held.back()->read_response());
    }
    HttpClient extra(gateway.port(), 2000);
    ASSERT_TRUE(extra.connect());
    EXPECT_TRUE(extra.closed_by_server());
    auto still = held.front()->request("GET", "/accounts/alice/balance");
    ASSERT_TRUE(still);
    EXPECT_EQ(still->status, 401);
  }
  EXPECT_TRUE(gateway.process().running());
  EXPECT_EQ(gateway.process().terminate(), 0);
}

TEST_F(GatewayTest, UpstreamFailuresAreFast502503And504) {
  const std::string reader = token("alice", "balances:read", "alice");
  // Nothing listens there: the connection is refused, the replica ejected, then 503.
  GatewayServer nowhere(dir_->path(), {"--jwks", (dir_->path() / "jwks.json").string(), "--upstream",
                                       "http://127.0.0.1:" + std::to_string(free_port())});
  ASSERT_TRUE(nowhere.start()) << nowhere.log();
  HttpClient client(nowhere.port());
  auto first = client.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + reader}});
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->status == 502 || first->status == 503) << first->status;
  auto second = client.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + reader}});
  EXPECT_EQ(second->status, 503);
  EXPECT_EQ(code_of(*second), "unavailable");
  EXPECT_FALSE(second->header("retry-after").empty());
  // The gateway stays ready: its readiness is its own, never its upstreams' (a database
  // outage must not empty the load balancer); it answers 503 itself meanwhile.
  HttpClient admin(nowhere.admin_port());
  EXPECT_EQ(admin.request("GET", "/readyz")->status, 200);
  EXPECT_EQ(nowhere.process().terminate(), 0);

  // A replica that accepts and never answers: 504 after the upstream timeout.
  const int hole = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(hole, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(hole, 64), 0);
  socklen_t length = sizeof address;
  ::getsockname(hole, reinterpret_cast<sockaddr*>(&address), &length);
  GatewayServer silent(dir_->path(), {"--jwks", (dir_->path() / "jwks.json").string(), "--upstream",
                                      "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)),
                                      "--upstream-timeout-ms", "300"});
  ASSERT_TRUE(silent.start()) << silent.log();
  HttpClient slow(silent.port());
  const auto started = std::chrono::steady_clock::now();
  auto timed_out = slow.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + reader}});
  ASSERT_TRUE(timed_out);
  EXPECT_EQ(timed_out->status, 504);
  EXPECT_EQ(code_of(*timed_out), "upstream_timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_EQ(silent.process().terminate(), 0);
  ::close(hole);
}

TEST_F(GatewayTest, RateLimitsAreSharedThroughRedisAndSurviveItsLoss) {
  Redis redis(dir_->path() / "redis", false);
  ASSERT_TRUE(redis.start()) << redis.error();
  const std::string store = "redis://127.0.0.1:" + std::to_string(redis.port());
  auto args = [&] {
    auto a = plain_args();
    for (std::string x : {std::string("--rate-limit"), std::string("1/s:4"), std::string("--ip-rate-limit"),
                          std::string("1000/s:1000"), std::string("--rate-limit-store"), store}) {
      a.push_back(x);
    }
    return a;
  };
  GatewayServer one(dir_->path(), args());
  GatewayServer two(dir_->path(), args());
  ASSERT_TRUE(one.start()) << one.log();
  ASSERT_TRUE(two.start()) << two.log();
  HttpClient a(one.port());
  HttpClient b(two.port());
  const std::string reader = token("limited-user", "balances:read", "alice");
  int allowed = 0;
  int limited = 0;
  HttpResponse refused;
  for (int i = 0; i < 10; ++i) {
    auto response = (i % 2 ? b : a).request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + reader}});
    ASSERT_TRUE(response);
    if (response->status == 200) ++allowed;
    if (response->status == 429) {
      ++limited;
      refused = *response;
    }
  }
  // A burst of 4 between both gateways (and at most one token refilled meanwhile).
  EXPECT_GE(allowed, 4);
  EXPECT_LE(allowed, 5);
  EXPECT_EQ(allowed + limited, 10);
  EXPECT_EQ(code_of(refused), "rate_limited");
  EXPECT_GE(std::stoi(refused.header("retry-after").empty() ? "0" : refused.header("retry-after")), 1);
  EXPECT_NE(refused.header("ratelimit-policy").find("q=4"), std::string::npos);
  EXPECT_NE(refused.header("ratelimit").find("r=0"), std::string::npos);
  // Redis goes away: decisions are made locally, nothing fails for it.
  redis.kill();
  const std::string other = token("another-user", "balances:read", "alice");
  for (int i = 0; i < 3; ++i) {
    auto response = a.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + other}});
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
  }
  HttpClient admin(one.admin_port());
  const std::string metrics = admin.request("GET", "/metrics")->body;
  EXPECT_EQ(metrics.find("balance_gateway_rate_limit_redis_fallbacks_total 0\n"), std::string::npos);
  EXPECT_NE(metrics.find("balance_gateway_rate_limit_decisions_total{decision=\"limited\",limit=\"principal\"}"),
            std::string::npos);
  EXPECT_EQ(one.process().terminate(), 0);
  EXPECT_EQ(two.process().terminate(), 0);

  // Per client address, before any token is looked at.
  auto ip_args = plain_args();
  for (std::string x : {"--ip-rate-limit", "1/s:2"}) ip_args.push_back(x);
  GatewayServer by_ip(dir_->path(), ip_args);
  ASSERT_TRUE(by_ip.start()) << by_ip.log();
  HttpClient c(by_ip.port());
  EXPECT_EQ(c.request("GET", "/accounts/alice/balance")->status, 401);
  EXPECT_EQ(c.request("GET", "/accounts/alice/balance")->status, 401);
  EXPECT_EQ(c.request("GET", "/accounts/alice/balance")->status, 429);
  EXPECT_EQ(by_ip.process().terminate(), 0);
}

TEST_F(GatewayTest, AStalledRedisHoldsNoWorker) {
  Redis redis(dir_->path() / "redis-stall", false);
  ASSERT_TRUE(redis.start()) << redis.error();
  // One worker, and a Redis timeout far longer than the clients wait: a worker held by
  // the stalled Redis would leave the clients below unanswered.
  auto args = plain_args();
  args.insert(args.end(), {"--threads", "1", "--rate-limit-store", "redis://" + redis.address(),
                           "--rate-limit-timeout-ms", "10000"});
  GatewayServer gateway(dir_->path(), args);
  ASSERT_TRUE(gateway.start()) << gateway.log();
  const std::string reader = token("stall-user", "balances:read", "alice");
  const std::string get = "GET /accounts/alice/balance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + reader +
                          "\r\n\r\n";
  HttpClient warm(gateway.port());
  auto first = warm.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + reader}});
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200) << first->body;
  // Redis had no script: the first decision sent it whole, once; the next ones name it by
  // its SHA-1 (a wrong digest would make every decision NOSCRIPT, then EVAL).
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(warm.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + reader}})->status, 200);
  }
  const std::string stats = redis.cli({"INFO", "commandstats"}).second;
  EXPECT_NE(stats.find("cmdstat_eval:calls=1,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("cmdstat_evalsha:calls="), std::string::npos) << stats;

  redis.process().pause();
  HttpClient one(gateway.port(), 3000), two(gateway.port(), 3000), other(gateway.port(), 3000);
  ASSERT_TRUE(one.connect() && two.connect() && other.connect());
  ASSERT_TRUE(one.send_raw(get));
  ASSERT_TRUE(two.send_raw(get));
  // Both wait for Redis's decision; the one worker still answers what needs no Redis:
  // the server's own answer to a malformed request comes from that worker.
  for (int i = 0; i < 3; ++i) {
    HttpClient malformed(gateway.port(), 3000);
    ASSERT_TRUE(malformed.connect());
    ASSERT_TRUE(malformed.send_raw("NOT HTTP\r\n\r\n"));
    auto answer = malformed.read_response();
    ASSERT_TRUE(answer.has_value()) << "the worker is held by the stalled Redis";
    EXPECT_EQ(answer->status, 400);
  }
  // The gateway's admin listener answers too, and the gateway is still ready.
  HttpClient admin(gateway.admin_port(), 3000);
  auto ready = admin.request("GET", "/readyz");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200);

  // Redis runs again: both decisions come back to the worker and the requests go on.
  redis.process().resume();
  for (HttpClient* client : {&one, &two}) {
    auto answered = client->read_response();
    ASSERT_TRUE(answered.has_value());
    EXPECT_EQ(answered->status, 200) << answered->body;
    EXPECT_NE(answered->header("ratelimit").find("\"principal\""), std::string::npos);
  }
  // Stalled again and stopped (SIGTERM): the waiting request is answered within the drain.
  redis.process().pause();
  ASSERT_TRUE(one.send_raw(get));
  std::this_thread::sleep_for(100ms);
  gateway.process().signal(SIGTERM);
  std::this_thread::sleep_for(300ms);
  redis.process().resume();
  auto drained = one.read_response();
  ASSERT_TRUE(drained.has_value()) << gateway.log();
  EXPECT_EQ(drained->status, 200) << drained->body;
  EXPECT_EQ(gateway.process().wait(20000), 0) << gateway.log();
  HttpClient direct(balanced_->port());
  EXPECT_EQ(direct.request("GET", "/healthz")->status, 200);
}

TEST_F(GatewayTest, RateLimitsThroughARedisClusterHoldOnEveryMaster) {
  RedisCluster cluster(dir_->path() / "rl-cluster");
  ASSERT_TRUE(cluster.start()) << cluster.error();
  auto args = plain_args();
  args.insert(args.end(), {"--rate-limit", "1/s:3", "--ip-rate-limit", "100000/s:100000", "--rate-limit-store",
                           cluster.url()});
  GatewayServer gateway(dir_->path(), args);
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient client(gateway.port());
  constexpr int principals = 24;  // their buckets' slots spread over the three masters
  for (int i = 0; i < principals; ++i) {
    const std::string reader = token("cluster-user-" + std::to_string(i), "balances:read", "alice");
    int allowed = 0;
    for (int j = 0; j < 5; ++j) {
      auto response = client.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + reader}});
      ASSERT_TRUE(response.has_value());
      ASSERT_TRUE(response->status == 200 || response->status == 429) << response->status << response->body;
      allowed += response->status == 200 ? 1 : 0;
    }
    // A burst of 3, and at most one token refilled while the five ran.
    EXPECT_GE(allowed, 3) << "principal " << i;
    EXPECT_LE(allowed, 4) << "principal " << i;
  }
  // Every master holds buckets, and loaded the script once (NOSCRIPT, then EVAL); no
  // decision was made locally.
  size_t keys = 0;
  for (size_t n = 0; n < cluster.size(); ++n) {
    const std::string listed = cluster.node(n).cli({"--scan", "--pattern", "gw:rl:*"}).second;
    const size_t here = static_cast<size_t>(std::count(listed.begin(), listed.end(), '\n'));
    EXPECT_GT(here, 0u) << "master " << n << " holds no bucket";
    keys += here;
    const std::string stats = cluster.node(n).cli({"INFO", "commandstats"}).second;
    EXPECT_NE(stats.find("cmdstat_eval:calls=1,"), std::string::npos) << stats;
    EXPECT_NE(stats.find("cmdstat_evalsha:calls="), std::string::npos) << stats;
  }
  EXPECT_EQ(keys, static_cast<size_t>(principals) + 1);  // and the one client address
  HttpClient admin(gateway.admin_port());
  const std::string metrics = admin.request("GET", "/metrics")->body;
  EXPECT_NE(metrics.find("balance_gateway_rate_limit_redis_fallbacks_total 0\n"), std::string::npos);
  EXPECT_EQ(gateway.process().terminate(), 0) << gateway.log();
}

TEST_F(GatewayTest, SigtermDrainsAndExitsZero) {
  GatewayServer gateway(dir_->path(), plain_args());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient idle(gateway.port());
  ASSERT_TRUE(idle.connect());
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(gateway.process().terminate(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_NE(gateway.log().find("\"stopped\""), std::string::npos);
}

// DESIGN.md section 9: balanced refuses a non-loopback address unless it checks tokens
// itself or is told the network is trusted.
TEST_F(GatewayTest, BalancedRefusesAnOpenAddressWithoutTokenChecksOrTrust) {
  const auto& d = dir_->path();
  auto [code, output] = run(d, {BALANCED_BINARY, "--listen", "0.0.0.0:0", "--db", "sqlite:" + (d / "open.db").string()});
  EXPECT_EQ(code, 1);
  EXPECT_NE(output.find("--trust-network"), std::string::npos) << output;

  BalancedServer trusted(d / "trusted", {"--trust-network"});
  std::filesystem::create_directories(d / "trusted");
  // BalancedServer listens on 127.0.0.1; check the flag is accepted on 0.0.0.0 by hand.
  Process open;
  ASSERT_TRUE(open.start({BALANCED_BINARY, "--listen", "0.0.0.0:0", "--trust-network", "--db",
                          "sqlite:" + (d / "trusted.db").string()},
                         d / "trusted.log"));
  ASSERT_TRUE(wait_until(open, 20000, [&] { return open.log().find("balanced serving") != std::string::npos; }))
      << open.log();
  EXPECT_EQ(open.terminate(), 0);

  // With its own token checks: the same rules as the gateway, on balanced itself.
  const auto guarded_dir = d / "guarded";
  std::filesystem::create_directories(guarded_dir);
  BalancedServer guarded(guarded_dir, {"--jwks", (d / "jwks.json").string(), "--jwt-issuer", kIssuer,
                                       "--jwt-audience", kAudience});
  ASSERT_TRUE(guarded.start()) << guarded.log();
  HttpClient client(guarded.port());
  EXPECT_EQ(client.request("GET", "/readyz")->status, 200);  // probes stay open
  EXPECT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"zed","initialBalance":5})")->status, 401);
  const std::string creator = token("ops", "accounts:write", "");
  EXPECT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"zed","initialBalance":5})",
                           {{"Authorization", "Bearer " + creator}})
                ->status,
            201);
  const std::string zed = token("zed", "balances:read", "zed");
  EXPECT_EQ(client.request("GET", "/accounts/zed/balance", "", {{"Authorization", "Bearer " + zed}})->status, 200);
  EXPECT_EQ(client.request("GET", "/accounts/alice/balance", "", {{"Authorization", "Bearer " + zed}})->status, 403);
  EXPECT_EQ(guarded.process().terminate(), 0);
}

// A MariaDB ledger, migrated, with `count` balanced replicas on it (no cache), each on
// `listen(i)` (default 127.0.0.1:0); and an ES256 key: the JWKS the gateway loads and an
// admin token signed with it. Fails the test (ASSERT) when any of it cannot start.
struct SharedLedger {
  void start(const std::filesystem::path& dir, int count,
             const std::function<std::string(int)>& listen = {}) {
    mariadb = std::make_unique<MariaDb>(dir / "mariadb");
    ASSERT_TRUE(mariadb->start()) << mariadb->error();
    ASSERT_TRUE(mariadb->create_database("ledger"));
    db = mariadb->url("ledger");
    ASSERT_EQ(run(dir, {BALANCECTL_BINARY, "migrate", "--db", db}).first, 0);
    for (int i = 0; i < count; ++i) {
      const auto replica_dir = dir / ("replica" + std::to_string(i));
      std::filesystem::create_directories(replica_dir);
      replicas.push_back(std::make_unique<BalancedServer>(replica_dir, std::vector<std::string>{"--threads", "2", "--cache", "none"}));
      replicas.back()->set_db(db);
      if (listen) replicas.back()->set_listen(listen(i));
      ASSERT_TRUE(replicas.back()->start()) << replicas.back()->log();
    }
    jwks = (dir / "jwks.json").string();
    ASSERT_EQ(run(dir, {BALANCECTL_BINARY, "keygen", "--alg", "ES256", "--kid", "k", "--key-out",
                        (dir / "k.pem").string(), "--jwks-out", jwks})
                  .first,
              0);
    auto [token_code, token_output] = run(dir, {BALANCECTL_BINARY, "token", "--key", (dir / "k.pem").string(), "--kid",
                                                "k", "--sub", "loader", "--scope", "admin", "--iss", kIssuer, "--aud",
                                                kAudience});
    ASSERT_EQ(token_code, 0);
    bearer = "Bearer " + trim(token_output);
  }

  std::unique_ptr<MariaDb> mariadb;
  std::string db;
  std::vector<std::unique_ptr<BalancedServer>> replicas;
  std::string jwks;
  std::string bearer;
};

// Two replicas on one MariaDB behind the gateway; one is killed under a load of
// transfers that carry their ids: the client sees no error, and the ledger verifies.
TEST(GatewayFailover, AReplicaKilledUnderLoadShowsTheClientNoError) {
  TempDir dir;
  SharedLedger ledger;
  ASSERT_NO_FATAL_FAILURE(ledger.start(dir.path(), 2));
  const std::string& db = ledger.db;
  auto& replicas = ledger.replicas;
  const std::string& bearer = ledger.bearer;
  GatewayServer gateway(dir.path(), {"--jwks", ledger.jwks, "--upstream",
                                     "http://127.0.0.1:" + std::to_string(replicas[0]->port()) + ",http://127.0.0.1:" +
                                         std::to_string(replicas[1]->port()),
                                     "--rate-limit", "1000000/s:1000000", "--ip-rate-limit", "1000000/s:1000000",
                                     "--access-log", "off"});
  ASSERT_TRUE(gateway.start()) << gateway.log();
  constexpr int accounts = 10;
  {
    HttpClient setup(gateway.port());
    for (int i = 0; i < accounts; ++i) {
      auto created = setup.request("POST", "/accounts",
                                   "{\"accountNumber\":\"f" + std::to_string(i) + "\",\"initialBalance\":1000000}",
                                   {{"Authorization", bearer}});
      ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "no answer");
    }
  }
  std::atomic<bool> stop{false};
  std::atomic<int> acknowledged{0};
  std::atomic<int> errors{0};
  std::vector<std::vector<std::string>> ids(6);
  std::vector<std::string> first_error(6);
  std::vector<std::thread> clients;
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client(gateway.port(), 15000);
      for (int n = 0; !stop.load(); ++n) {
        const std::string id = "fo-" + std::to_string(c) + "-" + std::to_string(n);
        const int from = (c + n) % accounts;
        const int to = (from + 1 + n % (accounts - 1)) % accounts;
        const std::string body = "{\"transactionId\":\"" + id + "\",\"sourceAccountNumber\":\"f" + std::to_string(from) +
                                 "\",\"destinationAccountNumber\":\"f" + std::to_string(to) + "\",\"amount\":1}";
        auto response = client.request("POST", "/accounts/transactions", body, {{"Authorization", bearer}});
        if (response && (response->status == 201 || response->status == 200)) {
          ids[c].push_back(id);
          acknowledged.fetch_add(1);
        } else {
          if (errors.fetch_add(1) == 0 || first_error[c].empty()) {
            first_error[c] = response ? std::to_string(response->status) + " " + response->body : "no answer";
          }
          client.close();
        }
      }
    });
  }
  std::this_thread::sleep_for(2s);
  replicas[0]->process().kill_hard();
  std::this_thread::sleep_for(3s);
  stop = true;
  for (auto& client : clients) client.join();
  std::string errors_seen;
  for (const auto& e : first_error) errors_seen += e + "\n";
  EXPECT_EQ(errors.load(), 0) << errors_seen;
  EXPECT_GT(acknowledged.load(), 100);
  // The kill was felt: the replica was taken out of rotation.
  HttpClient admin(gateway.admin_port());
  const std::string metrics = admin.request("GET", "/metrics")->body;
  const std::string killed = "127.0.0.1:" + std::to_string(replicas[0]->port());
  EXPECT_NE(metrics.find("balance_gateway_upstream_healthy{upstream=\"" + killed + "\"} 0"), std::string::npos) << metrics;
  // Every acknowledged transfer is there, committed, once.
  HttpClient check(gateway.port());
  for (const auto& list : ids) {
    for (size_t i = 0; i < list.size(); i += 7) {
      auto found = check.request("GET", "/transactions/" + list[i], "", {{"Authorization", bearer}});
      ASSERT_TRUE(found);
      EXPECT_EQ(found->status, 200) << list[i];
    }
  }
  EXPECT_EQ(replicas[1]->process().terminate(), 0);
  auto [verify_code, verify_output] = run(dir.path(), {BALANCECTL_BINARY, "verify", "--db", db});
  EXPECT_EQ(verify_code, 0) << verify_output;
  EXPECT_NE(verify_output.find("verify: clean"), std::string::npos) << verify_output;
  EXPECT_EQ(gateway.process().terminate(), 0);
}


// DESIGN.md section 12, "Replicas behind the gateway": --upstream names a host that
// resolves to every replica (a headless Service). The gateway starts while the name
// resolves to nothing (503 from the gateway itself, still ready), takes each address as a
// replica of its own, adds the ones that appear, drains the ones that vanish, and keeps
// the last set when the name stops resolving; a client sees no error throughout. The name
// lives in an /etc/hosts of the gateway's own mount namespace, rewritten by the test.
TEST(GatewayDiscovery, ReplicasFoundByNameComeAndGoWithoutAClientError) {
  TempDir dir;
  // Three replicas on one port, on 127.0.0.1, .2 and .3.
  const uint16_t port = free_port();
  SharedLedger ledger;
  ASSERT_NO_FATAL_FAILURE(ledger.start(dir.path(), 3, [port](int i) {
    return "127.0.0." + std::to_string(i + 1) + ":" + std::to_string(port);
  }));
  const std::string& db = ledger.db;
  auto& replicas = ledger.replicas;
  const auto hosts = dir.path() / "hosts";
  // Rewritten in place (the bind mount holds the file, not its name).
  const auto publish = [&hosts](const std::vector<int>& addresses) {
    std::ofstream out(hosts, std::ios::trunc);
    out << "127.0.0.1 localhost\n";
    for (int a : addresses) out << "127.0.0." << a << " replicas.test\n";
  };
  publish({});
  const Headers auth{{"Authorization", ledger.bearer}};
  GatewayServer gateway(dir.path(), {"--jwks", ledger.jwks, "--upstream",
                                     "http://replicas.test:" + std::to_string(port), "--upstream-resolve-s", "1",
                                     "--rate-limit", "1000000/s:1000000", "--ip-rate-limit", "1000000/s:1000000",
                                     "--access-log", "off"});
  gateway.set_wrapper({"/usr/bin/unshare", "--mount", "/bin/sh", "-c", "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
                       hosts.string()});
  ASSERT_TRUE(gateway.start()) << gateway.log();
  HttpClient admin(gateway.admin_port());
  const auto metrics = [&admin] { return admin.request("GET", "/metrics")->body; };
  const auto healthy = [&](int address) {
    return "balance_gateway_upstream_healthy{upstream=\"127.0.0." + std::to_string(address) + ":" +
           std::to_string(port) + "\"} 1";
  };
  const auto known = [&](int address) {
    return "upstream=\"127.0.0." + std::to_string(address) + ":" + std::to_string(port) + "\"";
  };
  const auto wait_metrics = [&](const std::function<bool(const std::string&)>& holds) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (holds(metrics())) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };

  // The name resolves to nothing: the gateway runs, is ready, and answers 503 itself.
  {
    HttpClient client(gateway.port());
    auto early = client.request("GET", "/accounts/f0/balance", "", auth);
    ASSERT_TRUE(early);
    EXPECT_EQ(early->status, 503);
    EXPECT_EQ(code_of(*early), "unavailable");
    EXPECT_EQ(admin.request("GET", "/readyz")->status, 200);
  }

  // Two addresses appear: each is a replica, in rotation after its first check.
  publish({1, 2});
  ASSERT_TRUE(wait_metrics([&](const std::string& m) {
    return m.find(healthy(1)) != std::string::npos && m.find(healthy(2)) != std::string::npos;
  })) << metrics();
  constexpr int accounts = 6;
  {
    HttpClient setup(gateway.port());
    for (int i = 0; i < accounts; ++i) {
      auto created = setup.request("POST", "/accounts",
                                   "{\"accountNumber\":\"f" + std::to_string(i) + "\",\"initialBalance\":1000000}", auth);
      ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "no answer");
    }
  }

  // Clients write all along; none may see an error.
  std::atomic<bool> stop{false};
  std::atomic<int> acknowledged{0};
  std::atomic<int> errors{0};
  std::vector<std::string> first_error(4);
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client(gateway.port(), 15000);
      for (int n = 0; !stop.load(); ++n) {
        const std::string body = "{\"transactionId\":\"d-" + std::to_string(c) + "-" + std::to_string(n) +
                                 "\",\"sourceAccountNumber\":\"f" + std::to_string(n % accounts) +
                                 "\",\"destinationAccountNumber\":\"f" + std::to_string((n + 1) % accounts) +
                                 "\",\"amount\":1}";
        auto response = client.request("POST", "/accounts/transactions", body, auth);
        if (response && (response->status == 201 || response->status == 200)) {
          acknowledged.fetch_add(1);
        } else {
          if (first_error[c].empty()) first_error[c] = response ? std::to_string(response->status) + " " + response->body : "no answer";
          errors.fetch_add(1);
          client.close();
        }
      }
    });
  }
  const auto progress = [&](int more) {
    const int target = acknowledged.load() + more;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (acknowledged.load() < target && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    return acknowledged.load() >= target;
  };
  EXPECT_TRUE(progress(200));

  // A third appears, then the first vanishes: it is drained, its series go.
  publish({1, 2, 3});
  EXPECT_TRUE(wait_metrics([&](const std::string& m) { return m.find(healthy(3)) != std::string::npos; })) << metrics();
  EXPECT_TRUE(progress(200));
  publish({2, 3});
  // The series go and the count follows (two updates: wait for both, not one).
  EXPECT_TRUE(wait_metrics([&](const std::string& m) {
    return m.find(known(1)) == std::string::npos && m.find("balance_gateway_upstream_replicas 2") != std::string::npos;
  })) << metrics();
  EXPECT_TRUE(progress(200));

  // The name stops resolving: the last set is kept.
  {
    std::ofstream out(hosts, std::ios::trunc);
    out << "127.0.0.1 localhost\n";
  }
  std::this_thread::sleep_for(2500ms);  // two resolutions, at 1 s each
  EXPECT_NE(metrics().find("balance_gateway_upstream_replicas 2"), std::string::npos) << metrics();
  EXPECT_TRUE(progress(200));
  stop = true;
  for (auto& client : clients) client.join();
  std::string errors_seen;
  for (const auto& e : first_error) errors_seen += e + "\n";
  EXPECT_EQ(errors.load(), 0) << errors_seen;
  EXPECT_EQ(admin.request("GET", "/readyz")->status, 200);
  EXPECT_EQ(gateway.process().terminate(), 0);
  for (auto& replica : replicas) EXPECT_EQ(replica->process().terminate(), 0);
  auto [verify_code, verify_output] = run(dir.path(), {BALANCECTL_BINARY, "verify", "--db", db});
  EXPECT_EQ(verify_code, 0) << verify_output;
}

}  // namespace
}  // namespace balanced::testing
