// Black-box tests of the real `balanced` binary on a free port: every endpoint, every
// error code, and what a hostile or broken client can send.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "support/http_client.h"
#include "support/process.h"
#include "support/sse_reader.h"
#include "support/webhook_receiver.h"

namespace balanced::testing {
namespace {

namespace json = boost::json;

class HttpApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    server_ = new BalancedServer(dir_->path(), {"--body-bytes-max", "4096"});
    ASSERT_TRUE(server_->start()) << server_->log();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->process().terminate(), 0) << server_->log();
    delete server_;
    delete dir_;
  }

  HttpResponse call(const std::string& method, const std::string& target,
                    const std::string& body = "",
                    const std::map<std::string, std::string>& headers = {}) {
    auto response = client_.request(method, target, body, headers);
    EXPECT_TRUE(response) << method << " " << target;
    return response.value_or(HttpResponse{});
  }

  static json::object object(const HttpResponse& response) {
    boost::system::error_code ec;
    json::value v = json::parse(response.body, ec);
    if (ec || !v.is_object()) return {};
    return v.as_object();
  }

  // Asserts a problem+json answer with this status and code.
  static void expect_problem(const HttpResponse& response, int status, const std::string& code) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_EQ(response.header("content-type"), "application/problem+json") << response.body;
    auto o = object(response);
    EXPECT_EQ(o["code"], json::value(code)) << response.body;
    EXPECT_EQ(o["status"], json::value(status)) << response.body;
    EXPECT_TRUE(o.contains("title") && o.contains("detail") && o.contains("type"));
  }

  void create(const std::string& number, int64_t initial, const std::string& extra = "") {
    auto r = call("POST", "/accounts",
                  "{\"accountNumber\":\"" + number + "\",\"initialBalance\":" +
                      std::to_string(initial) + extra + "}");
    ASSERT_EQ(r.status, 201) << r.body;
  }

  HttpResponse transfer(const std::string& id, const std::string& from, const std::string& to,
                        int64_t amount) {
    return call("POST", "/accounts/transactions",
                "{\"transactionId\":\"" + id + "\",\"sourceAccountNumber\":\"" + from +
                    "\",\"destinationAccountNumber\":\"" + to +
                    "\",\"amount\":" + std::to_string(amount) + "}");
  }

  int64_t balance(const std::string& number) {
    auto o = object(call("GET", "/accounts/" + number + "/balance"));
    return o["balance"].as_int64();
  }

  static TempDir* dir_;
  static BalancedServer* server_;
  HttpClient client_{server_->port()};
};

TempDir* HttpApi::dir_ = nullptr;
BalancedServer* HttpApi::server_ = nullptr;

TEST_F(HttpApi, SeedFlowCreateTransferReadBalance) {
  auto created = call("POST", "/accounts", R"({"accountNumber":"seed-a","initialBalance":1000})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("location"), "/accounts/seed-a");
  EXPECT_EQ(object(created)["currency"], "USD");
  // The seed's query-parameter form, and a form body.
  EXPECT_EQ(call("POST", "/accounts?accountNumber=seed-b&initialBalance=0").status, 201);
  EXPECT_EQ(call("POST", "/accounts", "accountNumber=seed-c&initialBalance=5",
                 {{"Content-Type", "application/x-www-form-urlencoded"}})
                .status,
            201);

  auto moved = transfer("seed-t1", "seed-a", "seed-b", 250);
  ASSERT_EQ(moved.status, 201) << moved.body;
  auto t = object(moved);
  EXPECT_EQ(t["status"], "committed");
  EXPECT_EQ(t["sourceBalanceAfter"], 750);
  EXPECT_EQ(t["destinationBalanceAfter"], 250);

  auto b = object(call("GET", "/accounts/seed-b/balance"));
  EXPECT_EQ(b["balance"], 250);
  EXPECT_EQ(b["version"], 1);
  EXPECT_EQ(b["currency"], "USD");
  EXPECT_TRUE(b.contains("asOf"));
  auto strong = object(call("GET", "/accounts/seed-b/balance?consistency=strong"));
  EXPECT_EQ(strong["balance"], 250);

  auto account = object(call("GET", "/accounts/seed-a"));
  EXPECT_EQ(account["balance"], 750);
  EXPECT_EQ(account["overdraftLimit"], 0);
  auto fetched = object(call("GET", "/transactions/seed-t1"));
  EXPECT_EQ(fetched["amount"], 250);
}

TEST_F(HttpApi, IdempotentReplayAndConflict) {
  create("idem-a", 100);
  create("idem-b", 0);
  auto first = transfer("idem-1", "idem-a", "idem-b", 10);
  ASSERT_EQ(first.status, 201);
  EXPECT_EQ(first.header("idempotent-replayed"), "");
  auto replay = transfer("idem-1", "idem-a", "idem-b", 10);
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(replay.header("idempotent-replayed"), "true");
  EXPECT_EQ(object(replay)["sequence"], object(first)["sequence"]);
  expect_problem(transfer("idem-1", "idem-a", "idem-b", 11), 409, "idempotency_conflict");
  EXPECT_EQ(balance("idem-a"), 90);

  // The Idempotency-Key header names the transaction when the body does not.
  const std::string body =
      R"({"sourceAccountNumber":"idem-a","destinationAccountNumber":"idem-b","amount":1})";
  auto keyed = call("POST", "/accounts/transactions", body, {{"Idempotency-Key", "idem-key-1"}});
  EXPECT_EQ(keyed.status, 201);
  EXPECT_EQ(object(keyed)["transactionId"], "idem-key-1");
  auto keyed_again = call("POST", "/accounts/transactions", body, {{"Idempotency-Key", "idem-key-1"}});
  EXPECT_EQ(keyed_again.status, 200);
  // Neither: a UUIDv7 is generated.
  auto generated = object(call("POST", "/accounts/transactions", body));
  EXPECT_EQ(generated["transactionId"].as_string().size(), 36u);
  EXPECT_EQ(balance("idem-a"), 88);
}

TEST_F(HttpApi, BusinessRejectionsAreRecordedAndSticky) {
  create("rej-a", 5);
  create("rej-b", 0);
  create("rej-eur", 5, R"(,"currency":"EUR")");
  expect_problem(transfer("rej-1", "rej-a", "rej-b", 6), 422, "insufficient_funds");
  auto again = transfer("rej-1", "rej-a", "rej-b", 6);
  expect_problem(again, 422, "insufficient_funds");
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  auto recorded = object(call("GET", "/transactions/rej-1"));
  EXPECT_EQ(recorded["status"], "rejected");
  EXPECT_EQ(recorded["rejectCode"], "insufficient_funds");
  expect_problem(transfer("rej-2", "rej-a", "rej-a", 1), 422, "same_account");
  expect_problem(transfer("rej-3", "rej-a", "rej-eur", 1), 422, "currency_mismatch");
  expect_problem(transfer("rej-4", "rej-a", "rej-nobody", 1), 404, "account_not_found");
  expect_problem(call("POST", "/accounts", R"({"accountNumber":"rej-a"})"), 409, "account_exists");
  EXPECT_EQ(balance("rej-a"), 5);
}

TEST_F(HttpApi, OverdraftLimitAndInt64Bounds) {
  create("big-a", 0, R"(,"overdraftLimit":9223372036854775807,"currency":"JPY")");
  create("big-b", 9223372036854775807LL, R"(,"currency":"JPY")");
  expect_problem(transfer("big-1", "big-a", "big-b", 1), 422, "balance_overflow");
  expect_problem(call("POST", "/accounts",
                      R"({"accountNumber":"big-c","initialBalance":2,"currency":"JPY"})"),
                 422, "balance_overflow");
  EXPECT_EQ(balance("big-b"), 9223372036854775807LL);
}

TEST_F(HttpApi, HistoryIsCursorPaginatedNewestFirst) {
  create("hist-a", 100);
  create("hist-b", 0);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(transfer("hist-" + std::to_string(i), "hist-a", "hist-b", 1).status, 201);
  auto page1 = object(call("GET", "/accounts/hist-b/transactions?limit=3"));
  ASSERT_EQ(page1["transactions"].as_array().size(), 3u);
  EXPECT_EQ(page1["transactions"].as_array()[0].as_object().at("transactionId"), "hist-4");
  ASSERT_TRUE(page1["nextCursor"].is_string());
  auto page2 = object(call("GET", "/accounts/hist-b/transactions?limit=3&cursor=" +
                                      std::string(page1["nextCursor"].as_string())));
  ASSERT_EQ(page2["transactions"].as_array().size(), 2u);
  EXPECT_TRUE(page2["nextCursor"].is_null());
  expect_problem(call("GET", "/accounts/hist-b/transactions?limit=0"), 400, "invalid_request");
  expect_problem(call("GET", "/accounts/hist-b/transactions?limit=501"), 400, "invalid_request");
  expect_problem(call("GET", "/accounts/hist-b/transactions?cursor=abc"), 400, "invalid_request");
  expect_problem(call("GET", "/accounts/hist-none/transactions"), 404, "account_not_found");
}

TEST_F(HttpApi, EveryNotFoundAndMethodError) {
  expect_problem(call("GET", "/accounts/nobody/balance"), 404, "account_not_found");
  expect_problem(call("GET", "/accounts/nobody"), 404, "account_not_found");
  expect_problem(call("GET", "/transactions/never"), 404, "not_found");
  expect_problem(call("GET", "/no/such/route"), 404, "not_found");
  auto wrong = call("DELETE", "/accounts/x/balance");
  expect_problem(wrong, 405, "method_not_allowed");
  EXPECT_EQ(wrong.header("allow"), "GET");
  expect_problem(call("GET", "/accounts"), 405, "method_not_allowed");
  expect_problem(call("GET", "/accounts/bad%20name/balance"), 400, "invalid_request");
  expect_problem(call("GET", "/accounts/x/balance?consistency=maybe"), 400, "invalid_request");
}

TEST_F(HttpApi, MalformedBodiesAre400AndChangeNothing) {
  create("bad-a", 10);
  create("bad-b", 0);
  std::vector<std::string> bodies = {
      "", "{", "not json", "[1,2]", R"({"sourceAccountNumber":"bad-a")",
      R"({"sourceAccountNumber":"bad-a","destinationAccountNumber":"bad-b","amount":1.5})",
      R"({"sourceAccountNumber":"bad-a","destinationAccountNumber":"bad-b","amount":"1"})",
      R"({"sourceAccountNumber":"bad-a","destinationAccountNumber":"bad-b","amount":1e3})",
      R"({"sourceAccountNumber":"bad-a","destinationAccountNumber":"bad-b","amount":-1})",
      R"({"sourceAccountNumber":"bad-a","destinationAccountNumber":"bad-b","amount":18446744073709551615})",
      R"({"sourceAccountNumber":"bad-a","destinationAccountNumber":"bad-b","amount":null})",
      R"({"sourceAccountNumber":["bad-a"],"destinationAccountNumber":"bad-b","amount":1})",
      "{\"sourceAccountNumber\":\"bad-\xc3\x28\",\"destinationAccountNumber\":\"bad-b\",\"amount\":1}",
      // I-JSON: a repeated name is refused, never read as its first or last value.
      R"({"sourceAccountNumber":"bad-a","destinationAccountNumber":"bad-b","amount":1,"amount":5})",
      R"({"sourceAccountNumber":"bad-b","destinationAccountNumber":"bad-b","sourceAccountNumber":"bad-a","amount":1})",
      R"({"sourceAccountNumber":"bad-a","destinationAccountNumber":"bad-b","amount":1,"timestamp":"\udc00"})",
  };
  std::string with_nul = R"({"sourceAccountNumber":"bad-a)";
  with_nul.push_back('\0');
  with_nul += R"(","destinationAccountNumber":"bad-b","amount":1})";
  bodies.push_back(with_nul);
  for (const auto& body : bodies) {
    auto r = call("POST", "/accounts/transactions", body);
    expect_problem(r, 400, "invalid_request");
  }
  expect_problem(call("POST", "/accounts", R"({"accountNumber":"x","initialBalance":0.5})"), 400,
                 "invalid_request");
  expect_problem(call("POST", "/accounts", R"({"accountNumber":"x","currency":"dollars"})"), 400,
                 "invalid_request");
  expect_problem(call("POST", "/accounts", R"({"initialBalance":5})"), 400, "invalid_request");
  expect_problem(call("POST", "/accounts?accountNumber=x&initialBalance=1.0"), 400, "invalid_request");
  expect_problem(call("POST", "/accounts", R"({"accountNumber":"dup","accountNumber":"dup2","initialBalance":1})"),
                 400, "invalid_request");
  expect_problem(call("GET", "/accounts/dup"), 404, "account_not_found");
  const std::string one = R"({"sourceAccountNumber":"bad-a","destinationAccountNumber":"bad-b","amount":1})";
  auto repeated = call("POST", "/accounts/transactions/batch",
                       R"({"transfers":[)" + one + R"(],"transfers":[)" + one + "," + one + "]}");
  expect_problem(repeated, 400, "invalid_request");
  EXPECT_NE(repeated.body.find("repeated"), std::string::npos) << repeated.body;
  EXPECT_EQ(balance("bad-a"), 10);
  EXPECT_EQ(balance("bad-b"), 0);
}

TEST_F(HttpApi, DepositsAndWithdrawalsMoveMoneyInAndOutWithTheirReferences) {
  create("dw-a", 0);
  auto in = call("POST", "/accounts/dw-a/deposits",
                 R"({"transactionId":"dep-1","amount":500,"reference":"ach-77","metadata":{"rail":"ach","batch":"9"}})");
  ASSERT_EQ(in.status, 201) << in.body;
  auto o = object(in);
  EXPECT_EQ(o["type"], json::value("deposit"));
  EXPECT_EQ(o["sourceAccountNumber"], json::value("$issuer:USD"));
  EXPECT_EQ(o["destinationAccountNumber"], json::value("dw-a"));
  EXPECT_EQ(o["reference"], json::value("ach-77"));
  EXPECT_EQ(json::serialize(o["metadata"]), R"({"batch":"9","rail":"ach"})");  // keys sorted
  EXPECT_EQ(o["destinationVersionAfter"], json::value(1));
  EXPECT_EQ(in.header("location"), "/transactions/dep-1");
  auto replay = call("POST", "/accounts/dw-a/deposits",
                     R"({"amount":500,"metadata":{"batch":"9","rail":"ach"},"reference":"ach-77"})",
                     {{"Idempotency-Key", "dep-1"}});
  EXPECT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(replay.header("idempotent-replayed"), "true");
  expect_problem(call("POST", "/accounts/dw-a/deposits", R"({"transactionId":"dep-1","amount":501,"reference":"ach-77"})"),
                 409, "idempotency_conflict");
  EXPECT_EQ(balance("dw-a"), 500);

  auto out = call("POST", "/accounts/dw-a/withdrawals", R"({"transactionId":"wd-1","amount":200,"currency":"USD"})");
  ASSERT_EQ(out.status, 201) << out.body;
  EXPECT_EQ(object(out)["destinationAccountNumber"], json::value("$issuer:USD"));
  EXPECT_EQ(balance("dw-a"), 300);
  // Recorded and sticky, like every business rejection.
  expect_problem(call("POST", "/accounts/dw-a/withdrawals", R"({"transactionId":"wd-2","amount":301})"), 422,
                 "insufficient_funds");
  auto rejected = call("GET", "/transactions/wd-2");
  EXPECT_EQ(object(rejected)["status"], json::value("rejected")) << rejected.body;
  expect_problem(call("POST", "/accounts/dw-a/withdrawals", R"({"transactionId":"wd-2","amount":301})"), 422,
                 "insufficient_funds");
  // The same id under another kind is another request.
  expect_problem(call("POST", "/accounts/dw-a/withdrawals", R"({"transactionId":"dep-1","amount":500,"reference":"ach-77"})"),
                 409, "idempotency_conflict");
  expect_problem(call("POST", "/accounts/dw-a/deposits", R"({"transactionId":"x-eur","amount":5,"currency":"EUR"})"),
                 422, "currency_mismatch");
  expect_problem(call("POST", "/accounts/nobody/deposits", R"({"transactionId":"x-none","amount":5})"), 404,
                 "account_not_found");
  expect_problem(call("POST", "/accounts/nobody/deposits", R"({"transactionId":"x-none-usd","amount":5,"currency":"USD"})"),
                 404, "account_not_found");
  const std::string long_reference(129, 'r');
  std::string many_keys = "{";
  for (int i = 0; i < 51; ++i) many_keys += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":\"v\"";
  many_keys += "}";
  for (const std::string& body :
       {std::string(R"({"transactionId":"bad-1","amount":0})"), std::string(R"({"transactionId":"bad-2"})"),
        std::string(R"({"transactionId":"bad-3","amount":5,"reference":""})"),
        R"({"transactionId":"bad-4","amount":5,"reference":")" + long_reference + R"("})",
        std::string(R"({"transactionId":"bad-5","amount":5,"metadata":{"k":5}})"),
        std::string(R"({"transactionId":"bad-6","amount":5,"metadata":["k"]})"),
        R"({"transactionId":"bad-7","amount":5,"metadata":{")" + std::string(41, 'k') + R"(":"v"}})",
        R"({"transactionId":"bad-8","amount":5,"metadata":{"k":")" + std::string(501, 'v') + R"("}})",
        R"({"transactionId":"bad-9","amount":5,"metadata":)" + many_keys + "}",
        std::string(R"({"transactionId":"bad-10","amount":5,"sourceAccountNumber":"$issuer:USD"})"),
        std::string(R"({"transactionId":"bad-11","amount":5,"currency":"usd"})")}) {
    expect_problem(call("POST", "/accounts/dw-a/deposits", body), 400, "invalid_request");
  }
  expect_problem(call("POST", "/accounts/bad%20name/withdrawals", R"({"amount":5})"), 400, "invalid_request");
  expect_problem(call("GET", "/transactions/bad-1"), 404, "not_found");  // a 400 is never recorded
  EXPECT_EQ(balance("dw-a"), 300);
}

TEST_F(HttpApi, AccountTypesMetadataAndAPatchWithIfMatch) {
  auto savings = call("POST", "/accounts", R"({"accountNumber":"pa-s","type":"savings","metadata":{"owner":"ann"}})");
  ASSERT_EQ(savings.status, 201) << savings.body;
  EXPECT_EQ(object(savings)["type"], json::value("savings"));
  EXPECT_EQ(json::serialize(object(savings)["metadata"]), R"({"owner":"ann"})");
  expect_problem(call("POST", "/accounts", R"({"accountNumber":"pa-x","type":"savings","overdraftLimit":5})"), 400,
                 "invalid_request");
  expect_problem(call("POST", "/accounts", R"({"accountNumber":"pa-y","type":"gold"})"), 400, "invalid_request");
  create("pa-c", 100);
  auto got = call("GET", "/accounts/pa-c");
  EXPECT_EQ(got.header("etag"), "\"1\"");
  EXPECT_EQ(object(got)["status"], json::value("active"));
  EXPECT_EQ(object(got)["available"], json::value(100));
  const std::map<std::string, std::string> merge{{"Content-Type", "application/merge-patch+json"}};
  auto limited = call("PATCH", "/accounts/pa-c", R"({"overdraftLimit":50,"metadata":{"tier":"gold"}})", merge);
  ASSERT_EQ(limited.status, 200) << limited.body;
  EXPECT_EQ(limited.header("etag"), "\"2\"");
  EXPECT_EQ(object(limited)["available"], json::value(150));
  EXPECT_EQ(object(call("GET", "/accounts/pa-c/balance"))["available"], json::value(150));
  // The same PATCH again: a harmless 200, no new version.
  auto again = call("PATCH", "/accounts/pa-c", R"({"overdraftLimit":50,"metadata":{"tier":"gold"}})", merge);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.header("etag"), "\"2\"");
  auto stale = call("PATCH", "/accounts/pa-c", R"({"status":"frozen","reason":"review"})",
                    {{"Content-Type", "application/json"}, {"If-Match", "\"1\""}});
  expect_problem(stale, 412, "version_mismatch");
  auto frozen = call("PATCH", "/accounts/pa-c", R"({"status":"frozen","reason":"review"})",
                     {{"Content-Type", "application/json"}, {"If-Match", "\"2\""}});
  ASSERT_EQ(frozen.status, 200) << frozen.body;
  expect_problem(transfer("pa-t1", "pa-c", "pa-s", 10), 422, "account_frozen");
  EXPECT_EQ(transfer("pa-t2", "pa-s", "pa-c", 0).status, 400);
  expect_problem(call("PATCH", "/accounts/pa-c", R"({"status":"closed"})", merge), 409, "account_not_empty");
  expect_problem(call("PATCH", "/accounts/pa-c", R"({"balance":5})", merge), 400, "invalid_request");
  expect_problem(call("PATCH", "/accounts/pa-c", R"({"status":"gone"})", merge), 400, "invalid_request");
  expect_problem(call("PATCH", "/accounts/pa-c", R"({"overdraftLimit":5})", {{"Content-Type", "text/plain"}}), 400,
                 "invalid_request");
  expect_problem(call("PATCH", "/accounts/pa-c", R"({"overdraftLimit":5})",
                      {{"Content-Type", "application/json"}, {"If-Match", "3"}}),
                 400, "invalid_request");
  expect_problem(call("PATCH", "/accounts/nobody", R"({"overdraftLimit":5})", merge), 404, "account_not_found");
  EXPECT_EQ(balance("pa-c"), 100);
}

TEST_F(HttpApi, AHoldIsCapturedOrVoidedOnceAndEveryCodeOfHolds) {
  create("hd-payer", 1000);
  create("hd-shop", 0);
  auto placed = call("POST", "/holds",
                     R"({"holdId":"hd-1","sourceAccountNumber":"hd-payer","destinationAccountNumber":"hd-shop","amount":300,"metadata":{"order":"7"}})");
  ASSERT_EQ(placed.status, 201) << placed.body;
  auto h = object(placed);
  EXPECT_EQ(h["status"], json::value("pending"));
  EXPECT_EQ(h["capturedAmount"], json::value(0));
  EXPECT_TRUE(h.contains("expiresAt"));
  EXPECT_EQ(placed.header("location"), "/holds/hd-1");
  auto payer = object(call("GET", "/accounts/hd-payer/balance"));
  EXPECT_EQ(payer["balance"], json::value(1000));
  EXPECT_EQ(payer["pendingDebits"], json::value(300));
  EXPECT_EQ(payer["available"], json::value(700));
  EXPECT_EQ(object(call("GET", "/accounts/hd-shop/balance"))["pendingCredits"], json::value(300));
  // A replay answers the hold; another payload under its id is a conflict; the hold's
  // amount is not spendable.
  auto replay = call("POST", "/holds",
                     R"({"holdId":"hd-1","sourceAccountNumber":"hd-payer","destinationAccountNumber":"hd-shop","amount":300,"metadata":{"order":"7"}})");
  EXPECT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(replay.header("idempotent-replayed"), "true");
  expect_problem(call("POST", "/holds",
                      R"({"holdId":"hd-1","sourceAccountNumber":"hd-payer","destinationAccountNumber":"hd-shop","amount":301})"),
                 409, "idempotency_conflict");
  expect_problem(transfer("hd-t1", "hd-payer", "hd-shop", 701), 422, "insufficient_funds");
  // Refused at creation: shown as rejected with its code, and never pending.
  expect_problem(call("POST", "/holds",
                      R"({"holdId":"hd-big","sourceAccountNumber":"hd-payer","destinationAccountNumber":"hd-shop","amount":701})"),
                 422, "insufficient_funds");
  auto big = object(call("GET", "/holds/hd-big"));
  EXPECT_EQ(big["status"], json::value("rejected"));
  EXPECT_EQ(big["code"], json::value("insufficient_funds"));
  expect_problem(call("POST", "/holds/hd-big/capture", R"({"captureId":"hd-big-c"})"), 409, "hold_not_pending");
  // Malformed: 400, nothing changes.
  expect_problem(call("POST", "/holds", R"({"holdId":"hd-x","sourceAccountNumber":"hd-payer","destinationAccountNumber":"hd-shop","amount":1,"expiresInSeconds":0})"),
                 400, "invalid_request");
  expect_problem(call("POST", "/holds", R"({"holdId":"hd-x","sourceAccountNumber":"hd-payer","destinationAccountNumber":"hd-shop","amount":1,"expiresInSeconds":2592001})"),
                 400, "invalid_request");
  expect_problem(call("POST", "/holds/hd-1/void", R"({"voidId":"hd-v","amount":5})"), 400, "invalid_request");
  expect_problem(call("POST", "/holds/hd-1/capture", R"({"captureId":"hd-c","amount":0})"), 400, "invalid_request");
  expect_problem(call("POST", "/holds/no-such-hold/capture", R"({"captureId":"hd-c0"})"), 404, "hold_not_found");
  expect_problem(call("GET", "/holds/no-such-hold"), 404, "hold_not_found");
  expect_problem(call("GET", "/holds/hd-t1"), 404, "hold_not_found");  // a transaction, not a hold
  // Someone who does not act for the hold's destination: 403, and the hold stays pending.
  expect_problem(call("POST", "/holds/hd-1/capture", R"({"captureId":"hd-c1"})", {{"X-Acting-For", "hd-payer"}}),
                 403, "forbidden");
  // More than held: 422, recorded under its id, the hold still pending.
  expect_problem(call("POST", "/holds/hd-1/capture", R"({"captureId":"hd-c2","amount":301})"), 422,
                 "exceeds_hold_amount");
  EXPECT_EQ(object(call("GET", "/holds/hd-1"))["status"], json::value("pending"));
  auto captured = call("POST", "/holds/hd-1/capture", R"({"captureId":"hd-c3","amount":120})",
                       {{"X-Acting-For", "hd-other,hd-shop"}});
  ASSERT_EQ(captured.status, 201) << captured.body;
  h = object(captured);
  EXPECT_EQ(h["status"], json::value("captured"));
  EXPECT_EQ(h["capturedAmount"], json::value(120));
  EXPECT_EQ(h["settledBy"], json::value("hd-c3"));
  EXPECT_EQ(balance("hd-payer"), 880);
  EXPECT_EQ(balance("hd-shop"), 120);
  payer = object(call("GET", "/accounts/hd-payer/balance"));
  EXPECT_EQ(payer["pendingDebits"], json::value(0));  // the rest released
  EXPECT_EQ(call("POST", "/holds/hd-1/capture", R"({"captureId":"hd-c3","amount":120})").header("idempotent-replayed"),
            "true");
  expect_problem(call("POST", "/holds/hd-1/capture", R"({"captureId":"hd-c4"})"), 409, "hold_not_pending");
  expect_problem(call("POST", "/holds/hd-1/void", R"({"voidId":"hd-v1"})"), 409, "hold_not_pending");
  auto capture_row = object(call("GET", "/transactions/hd-c3"));
  EXPECT_EQ(capture_row["type"], json::value("capture"));
  EXPECT_EQ(capture_row["holdId"], json::value("hd-1"));
  // A void releases it all; a frozen payer may still be released.
  ASSERT_EQ(call("POST", "/holds",
                 R"({"holdId":"hd-2","sourceAccountNumber":"hd-payer","destinationAccountNumber":"hd-shop","amount":80})")
                .status,
            201);
  ASSERT_EQ(call("PATCH", "/accounts/hd-payer", R"({"status":"frozen"})", {{"Content-Type", "application/json"}}).status,
            200);
  expect_problem(call("POST", "/holds",
                      R"({"holdId":"hd-3","sourceAccountNumber":"hd-payer","destinationAccountNumber":"hd-shop","amount":1})"),
                 422, "account_frozen");
  expect_problem(call("PATCH", "/accounts/hd-shop", R"({"status":"closed"})", {{"Content-Type", "application/json"}}),
                 409, "account_not_empty");
  auto voided = call("POST", "/holds/hd-2/void", R"({"voidId":"hd-v2"})");
  ASSERT_EQ(voided.status, 201) << voided.body;
  EXPECT_EQ(object(voided)["status"], json::value("voided"));
  EXPECT_EQ(object(call("GET", "/accounts/hd-payer/balance"))["pendingDebits"], json::value(0));
  auto pending = object(call("GET", "/accounts/hd-payer/holds?status=pending"));
  EXPECT_TRUE(pending["holds"].as_array().empty()) << json::serialize(pending);
  auto all = object(call("GET", "/accounts/hd-shop/holds?limit=1"));
  ASSERT_EQ(all["holds"].as_array().size(), 1u);
  EXPECT_EQ(all["holds"].as_array()[0].as_object().at("holdId"), json::value("hd-2"));
  ASSERT_TRUE(all["nextCursor"].is_string());
  auto next = object(call("GET", "/accounts/hd-shop/holds?limit=5&cursor=" + std::string(all["nextCursor"].as_string())));
  ASSERT_EQ(next["holds"].as_array().size(), 1u);
  EXPECT_EQ(next["holds"].as_array()[0].as_object().at("holdId"), json::value("hd-1"));
  expect_problem(call("GET", "/accounts/hd-shop/holds?status=open"), 400, "invalid_request");
  expect_problem(call("GET", "/accounts/nobody/holds"), 404, "account_not_found");
}

TEST_F(HttpApi, AnOverdueHoldIsExpiredOnceByTheSweeper) {
  create("ex-payer", 100);
  create("ex-shop", 0);
  ASSERT_EQ(call("POST", "/holds",
                 R"({"holdId":"ex-1","sourceAccountNumber":"ex-payer","destinationAccountNumber":"ex-shop","amount":40,"expiresInSeconds":1})")
                .status,
            201);
  // From expiresAt on it shows expired and refuses capture, swept or not.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(object(call("GET", "/holds/ex-1"))["status"], json::value("expired"));
  auto refused = call("POST", "/holds/ex-1/capture", R"({"captureId":"ex-c"})");
  expect_problem(refused, 409, "hold_not_pending");
  EXPECT_NE(refused.body.find("expired"), std::string::npos) << refused.body;
  // The sweeper (every --singleton-interval-ms, 1 s by default) releases it.
  json::object payer;
  for (int i = 0; i < 100; ++i) {
    payer = object(call("GET", "/accounts/ex-payer/balance"));
    if (payer["pendingDebits"] == json::value(0)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(payer["pendingDebits"], json::value(0));
  EXPECT_EQ(payer["balance"], json::value(100));
  auto expire = object(call("GET", "/transactions/$expire:ex-1"));
  EXPECT_EQ(expire["type"], json::value("expire"));
  EXPECT_EQ(expire["holdId"], json::value("ex-1"));
  EXPECT_EQ(object(call("GET", "/holds/ex-1"))["settledBy"], json::value("$expire:ex-1"));
}

TEST_F(HttpApi, RefundsGiveBackPartOrAllOfATransferNeverMore) {
  create("rf-buyer", 500);
  create("rf-shop", 0);
  ASSERT_EQ(transfer("rf-t1", "rf-buyer", "rf-shop", 200).status, 201);
  auto first = call("POST", "/transactions/rf-t1/refunds", R"({"refundId":"rf-r1","amount":50,"reason":"damaged","metadata":{"ticket":"9"}})");
  ASSERT_EQ(first.status, 201) << first.body;
  auto r = object(first);
  EXPECT_EQ(r["type"], json::value("refund"));
  EXPECT_EQ(r["refundOf"], json::value("rf-t1"));
  EXPECT_EQ(r["reason"], json::value("damaged"));
  EXPECT_EQ(r["sourceAccountNumber"], json::value("rf-shop"));
  EXPECT_EQ(r["destinationAccountNumber"], json::value("rf-buyer"));
  EXPECT_EQ(first.header("location"), "/transactions/rf-r1");
  EXPECT_EQ(call("POST", "/transactions/rf-t1/refunds", R"({"refundId":"rf-r1","amount":50,"reason":"damaged","metadata":{"ticket":"9"}})")
                .status,
            200);
  expect_problem(call("POST", "/transactions/rf-t1/refunds", R"({"refundId":"rf-r1","amount":51})"), 409,
                 "idempotency_conflict");
  auto over = call("POST", "/transactions/rf-t1/refunds", R"({"refundId":"rf-r2","amount":151})");
  expect_problem(over, 422, "exceeds_refundable_amount");
  EXPECT_NE(over.body.find("150"), std::string::npos) << over.body;  // the remainder named
  expect_problem(call("POST", "/transactions/rf-t1/refunds", R"({"refundId":"rf-r3"})", {{"X-Acting-For", "rf-buyer"}}),
                 403, "forbidden");
  // The shop spent the money: the refund needs its available.
  ASSERT_EQ(transfer("rf-t2", "rf-shop", "rf-buyer", 140).status, 201);
  expect_problem(call("POST", "/transactions/rf-t1/refunds", R"({"refundId":"rf-r4"})"), 422, "insufficient_funds");
  ASSERT_EQ(transfer("rf-t3", "rf-buyer", "rf-shop", 140).status, 201);
  auto rest = call("POST", "/transactions/rf-t1/refunds", R"({"refundId":"rf-r5"})");
  ASSERT_EQ(rest.status, 201) << rest.body;
  EXPECT_EQ(object(rest)["amount"], json::value(150));  // the remainder by default
  EXPECT_EQ(object(call("GET", "/transactions/rf-t1"))["refundedAmount"], json::value(200));
  EXPECT_EQ(object(call("GET", "/transactions/rf-t3"))["refundedAmount"], json::value(0));
  expect_problem(call("POST", "/transactions/rf-t1/refunds", R"({"refundId":"rf-r6"})"), 422,
                 "exceeds_refundable_amount");
  expect_problem(call("POST", "/transactions/rf-r1/refunds", R"({"refundId":"rf-r7"})"), 422, "not_refundable");
  expect_problem(call("POST", "/transactions/rf-r4/refunds", R"({"refundId":"rf-r8"})"), 422, "not_refundable");
  expect_problem(call("POST", "/transactions/rf-none/refunds", R"({"refundId":"rf-r9"})"), 404, "not_found");
  expect_problem(call("POST", "/transactions/rf-t3/refunds", R"({"refundId":"rf-r10","reason":""})"), 400,
                 "invalid_request");
  EXPECT_EQ(balance("rf-buyer"), 500 - 200 + 50 + 140 - 140 + 150);
}

TEST(HttpUniqueReferences, ARailsReferenceIsCommittedOnceUnderTheFlag) {
  TempDir dir;
  BalancedServer server(dir.path(), {"--unique-references"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  ASSERT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"ur-a","initialBalance":100})")->status, 201);
  auto post = [&](const std::string& kind, const std::string& body) {
    auto r = client.request("POST", "/accounts/ur-a/" + kind, body);
    return r ? *r : HttpResponse{};
  };
  EXPECT_EQ(post("deposits", R"({"transactionId":"ur-1","amount":5,"reference":"ach-1"})").status, 201);
  EXPECT_EQ(post("deposits", R"({"transactionId":"ur-1","amount":5,"reference":"ach-1"})").status, 200);  // a replay
  auto duplicate = post("withdrawals", R"({"transactionId":"ur-2","amount":5,"reference":"ach-1"})");
  EXPECT_EQ(duplicate.status, 409) << duplicate.body;
  EXPECT_NE(duplicate.body.find("\"code\":\"duplicate_reference\""), std::string::npos) << duplicate.body;
  EXPECT_NE(duplicate.body.find("ur-1"), std::string::npos) << duplicate.body;  // names the owner
  EXPECT_EQ(client.request("GET", "/transactions/ur-2")->status, 404);  // nothing recorded
  EXPECT_EQ(post("withdrawals", R"({"transactionId":"ur-3","amount":5,"reference":"ach-2"})").status, 201);
  EXPECT_EQ(post("deposits", R"({"transactionId":"ur-4","amount":5})").status, 201);  // no reference: no key
  EXPECT_EQ(post("deposits", R"({"transactionId":"ur-5","amount":5})").status, 201);
  EXPECT_EQ(server.process().terminate(), 0);
}

// One request's answer; an empty one (and a failure) when none came.
HttpResponse answer_of(HttpClient& client, const std::string& method, const std::string& target,
                       const std::string& body) {
  auto r = client.request(method, target, body);
  EXPECT_TRUE(r) << method << " " << target;
  return r.value_or(HttpResponse{});
}

// Risk rules (DESIGN.md section 11) from a file reread when it changes.
TEST(HttpRisk, RulesDenyAndReviewAndABadFileKeepsTheRulesBefore) {
  TempDir dir;
  const auto rules_path = dir.path() / "risk.json";
  const auto write_rules = [&](const std::string& text) {
    // Replaced whole, as a ConfigMap volume swaps its file: never read half written.
    const auto staged = dir.path() / "risk.json.new";
    std::ofstream(staged) << text;
    std::filesystem::rename(staged, rules_path);
  };
  write_rules("{\"rules\": [{\"name\": \"big\", \"when\": {\"amountGte\": 500}, \"then\": \"deny\"}");
  {
    BalancedServer refused(dir.path(), {"--risk-rules", rules_path.string()});
    EXPECT_FALSE(refused.start());  // a bad file at start: the process does not serve
    EXPECT_NE(refused.log().find("--risk-rules"), std::string::npos) << refused.log();
  }
  write_rules(R"([{"name": "big", "when": {"amountGte": 500}, "then": "deny"},
                  {"name": "look", "when": {"amountGte": 100, "type": ["transfer", "withdrawal"]}, "then": "review"}])");
  BalancedServer server(dir.path(), {"--risk-rules", rules_path.string()});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  const auto call = [&](const std::string& method, const std::string& target, const std::string& body = "") {
    return answer_of(client, method, target, body);
  };
  const auto transfer = [&](const std::string& id, int64_t amount) {
    return call("POST", "/accounts/transactions",
                R"({"transactionId":")" + id + R"(","sourceAccountNumber":"rk-a","destinationAccountNumber":"rk-b","amount":)" +
                    std::to_string(amount) + "}");
  };
  ASSERT_EQ(call("POST", "/accounts", R"({"accountNumber":"rk-a","initialBalance":10000})").status, 201);
  ASSERT_EQ(call("POST", "/accounts", R"({"accountNumber":"rk-b","initialBalance":0})").status, 201);

  auto denied = transfer("rk-1", 600);
  EXPECT_EQ(denied.status, 422) << denied.body;
  EXPECT_NE(denied.body.find("\"code\":\"risk_denied\""), std::string::npos) << denied.body;
  EXPECT_NE(denied.body.find("risk rule big"), std::string::npos) << denied.body;
  EXPECT_EQ(transfer("rk-1", 600).status, 422);  // sticky
  auto stored = call("GET", "/transactions/rk-1");
  EXPECT_NE(stored.body.find("\"riskDecision\":\"deny\""), std::string::npos) << stored.body;
  EXPECT_NE(stored.body.find("\"riskRule\":\"big\""), std::string::npos) << stored.body;

  auto held = transfer("rk-2", 200);
  EXPECT_EQ(held.status, 202) << held.body;
  EXPECT_NE(held.body.find("\"status\":\"pending\""), std::string::npos) << held.body;
  EXPECT_NE(held.body.find("\"reviewRule\":\"look\""), std::string::npos) << held.body;
  EXPECT_EQ(held.header("location"), "/holds/rk-2");
  auto replayed = transfer("rk-2", 200);
  EXPECT_EQ(replayed.status, 200) << replayed.body;
  EXPECT_EQ(replayed.body, held.body);
  auto balances = call("GET", "/accounts/rk-a/balance");
  EXPECT_NE(balances.body.find("\"balance\":10000"), std::string::npos) << balances.body;
  EXPECT_NE(balances.body.find("\"available\":9800"), std::string::npos) << balances.body;
  // Elsewhere a review denies: a batch item, a withdrawal.
  auto batch = call("POST", "/accounts/transactions/batch",
                    R"({"transfers":[{"transactionId":"rk-3","sourceAccountNumber":"rk-a","destinationAccountNumber":"rk-b","amount":150},)"
                    R"({"transactionId":"rk-4","sourceAccountNumber":"rk-a","destinationAccountNumber":"rk-b","amount":50}]})");
  EXPECT_EQ(batch.status, 200) << batch.body;
  EXPECT_NE(batch.body.find("risk_denied"), std::string::npos) << batch.body;
  EXPECT_EQ(call("POST", "/accounts/rk-a/withdrawals", R"({"transactionId":"rk-5","amount":100})").status, 422);
  // The operators' queue: pending review holds, by rule or all.
  auto queue = call("GET", "/holds?reviewRule=*&status=pending");
  EXPECT_EQ(queue.status, 200) << queue.body;
  EXPECT_NE(queue.body.find("\"holdId\":\"rk-2\""), std::string::npos) << queue.body;
  EXPECT_NE(call("GET", "/holds?reviewRule=look").body.find("rk-2"), std::string::npos);
  EXPECT_EQ(call("GET", "/holds?reviewRule=big").body.find("rk-2"), std::string::npos);
  EXPECT_EQ(call("GET", "/holds").status, 400);
  EXPECT_EQ(call("GET", "/holds?reviewRule=*&status=captured").status, 400);
  // An operator captures the held transfer (no gateway: every caller is an admin here).
  auto captured = call("POST", "/holds/rk-2/capture", R"({"captureId":"rk-2c"})");
  EXPECT_EQ(captured.status, 201) << captured.body;
  EXPECT_NE(call("GET", "/accounts/rk-b/balance").body.find("\"balance\":250"), std::string::npos);
  EXPECT_EQ(call("GET", "/holds?reviewRule=*").body.find("rk-2"), std::string::npos);  // no longer waiting

  // A bad file keeps the rules before it, and says why.
  write_rules(R"([{"name": "big", "when": {"amountGte": -1}, "then": "deny"}])");
  const auto eventually = [&](const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return done();
  };
  EXPECT_TRUE(eventually([&] { return server.log().find("the risk rules file is not valid") != std::string::npos; }))
      << server.log();
  EXPECT_EQ(transfer("rk-6", 700).status, 422);
  auto metrics = call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("balanced_risk_rules_reloads_total{result=\"failed\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(balanced_risk_decisions_total{decision="deny",rule="big"} 2)"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(balanced_risk_decisions_total{decision="review",rule="look"} 1)"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("balanced_risk_rules 2"), std::string::npos) << metrics;
  // A good one is in force within a poll.
  write_rules("[]");
  int attempt = 0;  // a denial is sticky: each try a new id
  EXPECT_TRUE(eventually([&] { return transfer("rk-7-" + std::to_string(attempt++), 700).status == 201; }))
      << server.log();
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
}

// The risk hook (DESIGN.md section 11): one call per request, before it is queued; its
// decision stored, so a retry never asks again; late or failed: --risk-hook-failure.
TEST(HttpRisk, AHookIsAskedOncePerRequestAndItsDecisionIsStored) {
  TempDir dir;
  WebhookReceiver hook([](size_t, const ReceivedHook& request) {
    if (request.body.find("\"amount\":666") != std::string::npos) {
      return HookAnswer{.body = R"({"decision":"deny","reason":"on a sanctions list"})"};
    }
    if (request.body.find("\"amount\":777") != std::string::npos) return HookAnswer{.body = R"({"decision":"review"})"};
    if (request.body.find("\"amount\":999") != std::string::npos) return HookAnswer{.body = R"({"decision":"allow"})", .delay_ms = 3000};
    if (request.body.find("\"amount\":555") != std::string::npos) return HookAnswer{.status = 500};
    return HookAnswer{.body = R"({"decision":"allow","reason":"known customer"})"};
  });
  const std::string url = "http://127.0.0.1:" + std::to_string(hook.port()) + "/decide";
  // A deadline of a second: the answers here take a millisecond, the late one 3 s.
  BalancedServer server(dir.path(), {"--risk-hook", url, "--risk-hook-timeout-ms", "1000"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  const auto call = [&](const std::string& method, const std::string& target, const std::string& body = "") {
    return answer_of(client, method, target, body);
  };
  const auto item = [](const std::string& id, int64_t amount) {
    return R"({"transactionId":")" + id + R"(","sourceAccountNumber":"hk-a","destinationAccountNumber":"hk-b","amount":)" +
           std::to_string(amount) + "}";
  };
  const auto transfer = [&](const std::string& id, int64_t amount) { return call("POST", "/accounts/transactions", item(id, amount)); };
  ASSERT_EQ(call("POST", "/accounts", R"({"accountNumber":"hk-a","initialBalance":100000})").status, 201);
  ASSERT_EQ(call("POST", "/accounts", R"({"accountNumber":"hk-b","initialBalance":0})").status, 201);
  EXPECT_TRUE(hook.received().empty());  // opening balances are no client's debits

  auto allowed = transfer("hk-1", 5);
  EXPECT_EQ(allowed.status, 201) << allowed.body;
  EXPECT_NE(allowed.body.find("\"riskDecision\":\"allow\""), std::string::npos) << allowed.body;
  EXPECT_NE(allowed.body.find("\"riskRule\":\"$hook\""), std::string::npos) << allowed.body;
  ASSERT_EQ(hook.received().size(), 1u);
  const auto asked = json::parse(hook.received()[0].body);
  EXPECT_EQ(asked.at("transactions").as_array().size(), 1u);
  EXPECT_EQ(asked.at("transactions").as_array()[0].at("transactionId"), json::value("hk-1"));
  EXPECT_EQ(hook.received()[0].headers["content-type"], "application/json");
  EXPECT_EQ(transfer("hk-1", 5).status, 200);  // a replay: not asked again
  EXPECT_EQ(hook.received().size(), 1u);

  auto denied = transfer("hk-2", 666);
  EXPECT_EQ(denied.status, 422) << denied.body;
  EXPECT_NE(denied.body.find("risk_denied"), std::string::npos) << denied.body;
  EXPECT_NE(denied.body.find("on a sanctions list"), std::string::npos) << denied.body;
  auto reviewed = transfer("hk-3", 777);
  EXPECT_EQ(reviewed.status, 202) << reviewed.body;
  EXPECT_NE(reviewed.body.find("\"reviewRule\":\"$hook\""), std::string::npos) << reviewed.body;
  auto failing = transfer("hk-5", 555);
  EXPECT_EQ(failing.status, 422) << failing.body;  // the default failure mode: deny
  EXPECT_NE(failing.body.find("answered 500"), std::string::npos) << failing.body;
  auto late = transfer("hk-4", 999);
  EXPECT_EQ(late.status, 422) << late.body;
  EXPECT_NE(late.body.find("risk hook failed"), std::string::npos) << late.body;
  // The receiver answers one request at a time: let it finish the late one.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const size_t before_replay = hook.received().size();
  EXPECT_EQ(transfer("hk-4", 999).status, 422);  // recorded: sticky, not asked again
  EXPECT_EQ(hook.received().size(), before_replay);
  const size_t before_batch = hook.received().size();
  auto batch = call("POST", "/accounts/transactions/batch",
                    "{\"transfers\":[" + item("hk-6", 1) + "," + item("hk-7", 2) + "," + item("hk-8", 3) + "]}");
  EXPECT_EQ(batch.status, 200) << batch.body;
  EXPECT_NE(batch.body.find("\"committed\":3"), std::string::npos) << batch.body;
  ASSERT_EQ(hook.received().size(), before_batch + 1);  // one call for the whole batch
  EXPECT_EQ(json::parse(hook.received().back().body).at("transactions").as_array().size(), 3u);
  auto metrics = call("GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(balanced_risk_hook_calls_total{result="failed"} 2)"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(balanced_risk_decisions_total{decision="deny",rule="$hook"} 3)"), std::string::npos) << metrics;
  EXPECT_EQ(server.process().terminate(), 0) << server.log();

  // --risk-hook-failure allow: a late hook lets the debit through.
  TempDir other;  // a ledger (and a log) of its own
  BalancedServer lenient(other.path(), {"--risk-hook", url, "--risk-hook-timeout-ms", "1000", "--risk-hook-failure", "allow"});
  ASSERT_TRUE(lenient.start()) << lenient.log();
  HttpClient again(lenient.port());
  for (const char* account : {R"({"accountNumber":"hk-a","initialBalance":1000})", R"({"accountNumber":"hk-b"})"}) {
    ASSERT_EQ(again.request("POST", "/accounts", account)->status, 201);
  }
  auto let_through = again.request("POST", "/accounts/transactions", item("hk-9", 999));
  ASSERT_TRUE(let_through) << lenient.log();
  EXPECT_EQ(let_through->status, 201) << let_through->body;
  EXPECT_EQ(lenient.process().terminate(), 0) << lenient.log();
}

// Accounts <prefix>0 .. <prefix>(count - 1), each with `balance`.
void create_numbered(HttpClient& client, const std::string& prefix, int count, int64_t balance) {
  for (int a = 0; a < count; ++a) {
    auto created = client.request("POST", "/accounts",
                                  "{\"accountNumber\":\"" + prefix + std::to_string(a) +
                                      "\",\"initialBalance\":" + std::to_string(balance) + "}");
    ASSERT_TRUE(created);
    ASSERT_EQ(created->status, 201) << created->body;
  }
}

// The change feed (DESIGN.md section 11) on a ledger of its own, so ids start at 1.
TEST(HttpEvents, ConcurrentWritersMakeGaplessEventsAndRejectionsNone) {
  TempDir dir;
  BalancedServer server(dir.path(), {});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  ASSERT_NO_FATAL_FAILURE(create_numbered(client, "ev", 4, 100));
  std::atomic<int> committed{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      HttpClient own(server.port());
      for (int i = 0; i < 25; ++i) {
        const int from = (w + i) % 4;
        // Every fifth asks for more than any account holds: refused, recorded, no event.
        const int amount = i % 5 == 4 ? 100'000 : 1 + (w + i) % 7;
        auto r = own.request("POST", "/accounts/transactions",
                             "{\"transactionId\":\"ev-" + std::to_string(w) + "-" + std::to_string(i) +
                                 "\",\"sourceAccountNumber\":\"ev" + std::to_string(from) +
                                 "\",\"destinationAccountNumber\":\"ev" + std::to_string((from + 1) % 4) +
                                 "\",\"amount\":" + std::to_string(amount) + "}");
        if (r && r->status == 201) ++committed;
        if (r && r->status == 422) ++refused;
      }
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(committed + refused, 200);
  EXPECT_GE(refused.load(), 40);
  // Read back a page of 7 at a time: 1..n in order, each committed transfer once.
  std::set<std::string> transfers;
  int64_t after = 0;
  int64_t expected_id = 1;
  while (true) {
    auto page = client.request("GET", "/events?after=" + std::to_string(after) + "&limit=7");
    ASSERT_TRUE(page);
    ASSERT_EQ(page->status, 200) << page->body;
    const json::value body = json::parse(page->body);
    const auto& events = body.at("events").as_array();
    if (events.empty()) {
      EXPECT_EQ(body.at("next").as_int64(), after);
      break;
    }
    for (const auto& event : events) {
      ASSERT_EQ(event.at("id").as_int64(), expected_id++);
      EXPECT_EQ(event.at("apiVersion").as_string(), "2026-12-06");
      if (event.at("type").as_string() == "transaction.transfer") {
        EXPECT_EQ(event.at("transaction").at("status").as_string(), "committed");
        EXPECT_TRUE(transfers.insert(std::string(event.at("transaction").at("transactionId").as_string())).second);
      }
    }
    after = body.at("next").as_int64();
    EXPECT_EQ(after, events.back().at("id").as_int64());
  }
  EXPECT_EQ(transfers.size(), static_cast<size_t>(committed.load()));
  EXPECT_EQ(expected_id - 1, 4 + 4 + committed.load());  // accounts, their deposits, transfers
  EXPECT_EQ(server.process().terminate(), 0);
}

TEST(HttpEvents, ALongPollIsAnsweredByTheNextCommitOrEmptyAtItsDeadline) {
  TempDir dir;
  BalancedServer server(dir.path(), {});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  ASSERT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"lp-a","initialBalance":10})")->status, 201);
  // Nothing past 2 within a second: an empty page, next unchanged.
  auto empty = client.request("GET", "/events?after=2&wait=1");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 200) << empty->body;
  EXPECT_EQ(empty->body, R"({"events":[],"next":2})");
  std::optional<HttpResponse> polled;
  std::thread poller([&] {
    HttpClient own(server.port());
    polled = own.request("GET", "/events?after=2&wait=30");
  });
  // The poll is waiting (no thread of balanced's held): a commit answers it.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(client.request("POST", "/accounts/lp-a/deposits", R"({"transactionId":"lp-d","amount":5})")->status, 201);
  poller.join();
  ASSERT_TRUE(polled);
  ASSERT_EQ(polled->status, 200) << polled->body;
  const json::value body = json::parse(polled->body);
  ASSERT_EQ(body.at("events").as_array().size(), 1u) << polled->body;
  EXPECT_EQ(body.at("events").at(0).at("type").as_string(), "transaction.deposit");
  EXPECT_EQ(body.at("events").at(0).at("balances").at(1).at("balance").as_int64(), 15);
  EXPECT_EQ(body.at("next").as_int64(), 3);
  for (const char* bad : {"/events?after=-1", "/events?after=x", "/events?limit=0", "/events?limit=1001",
                          "/events?wait=31", "/events?wait=-1"}) {
    auto r = client.request("GET", bad);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad << " " << r->body;
    EXPECT_NE(r->body.find("\"code\":\"invalid_request\""), std::string::npos) << r->body;
  }
  // A SIGTERM answers a waiting poll (empty) before the server closes, and exits 0.
  std::optional<HttpResponse> drained;
  std::thread waiting([&] {
    HttpClient own(server.port());
    drained = own.request("GET", "/events?after=3&wait=30");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
  waiting.join();
  ASSERT_TRUE(drained);
  EXPECT_EQ(drained->status, 200) << drained->body;
  EXPECT_EQ(drained->body, R"({"events":[],"next":3})");
}

TEST(HttpEvents, EventsPastTheirRetentionAreGoneAndAReaderBehindIsTold410) {
  TempDir dir;
  // About a second of retention, a retention run every 100 ms.
  BalancedServer server(dir.path(), {"--events-retention-h", "0.0003", "--singleton-interval-ms", "100"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  ASSERT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"rt-a","initialBalance":10})")->status, 201);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"rt-b"})")->status, 201);  // event 3
  // Events 1 and 2 go at a run within the next seconds; 3 is the newest and stays.
  std::optional<HttpResponse> behind;
  for (int i = 0; i < 100; ++i) {
    behind = client.request("GET", "/events?after=0");
    if (behind && behind->status == 410) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(behind);
  EXPECT_EQ(behind->status, 410) << behind->body;
  EXPECT_NE(behind->body.find("\"code\":\"events_expired\""), std::string::npos) << behind->body;
  auto kept = client.request("GET", "/events");  // from the oldest kept
  ASSERT_TRUE(kept);
  ASSERT_EQ(kept->status, 200) << kept->body;
  const json::value body = json::parse(kept->body);
  ASSERT_FALSE(body.at("events").as_array().empty());
  EXPECT_EQ(body.at("events").as_array().back().at("id").as_int64(), 3);
  EXPECT_EQ(client.request("GET", "/events?after=2")->status, 200);  // just behind the oldest kept: fine
  // A stream that would start behind the oldest kept is refused before it opens.
  auto stream_behind = client.request("GET", "/events/stream?after=0");
  ASSERT_TRUE(stream_behind);
  EXPECT_EQ(stream_behind->status, 410) << stream_behind->body;
  EXPECT_NE(stream_behind->body.find("\"code\":\"events_expired\""), std::string::npos) << stream_behind->body;
  auto resumed_behind = client.request("GET", "/events/stream?after=3", "", {{"Last-Event-ID", "0"}});
  ASSERT_TRUE(resumed_behind);
  EXPECT_EQ(resumed_behind->status, 410) << resumed_behind->body;
  EXPECT_EQ(server.process().terminate(), 0);
}

std::string batch_item(const std::string& id, const std::string& from, const std::string& to, int64_t amount) {
  return "{\"transactionId\":\"" + id + "\",\"sourceAccountNumber\":\"" + from +
         "\",\"destinationAccountNumber\":\"" + to + "\",\"amount\":" + std::to_string(amount) + "}";
}

// The event a stream message carries: its id and type on the SSE lines and in the JSON.
int64_t checked_event(const SseMessage& message) {
  const json::value event = json::parse(message.data);
  EXPECT_EQ(std::to_string(event.at("id").as_int64()), message.id);
  EXPECT_EQ(event.at("type").as_string(), message.event);
  return event.at("id").as_int64();
}

TEST(HttpEvents, AStreamSendsEveryEventOnceInOrderAndResumesAfterLastEventId) {
  TempDir dir;
  BalancedServer server(dir.path(), {});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  ASSERT_NO_FATAL_FAILURE(create_numbered(client, "es", 4, 1000));
  HttpClient first(server.port());
  SseReader reader(first);
  auto head = reader.open("/events/stream?after=0");
  ASSERT_TRUE(head);
  ASSERT_EQ(head->status, 200) << head->body;
  EXPECT_EQ(head->header("content-type"), "text/event-stream");
  EXPECT_EQ(head->header("cache-control"), "no-cache");
  // Writers commit while the stream is read: 8 events so far, 120 transfers to come.
  constexpr int kWriters = 4;
  constexpr int kEach = 30;
  constexpr int64_t kTotal = 8 + kWriters * kEach;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpClient own(server.port());
      for (int i = 0; i < kEach; ++i) {
        auto r = own.request("POST", "/accounts/transactions",
                             "{\"transactionId\":\"es-" + std::to_string(w) + "-" + std::to_string(i) +
                                 "\",\"sourceAccountNumber\":\"es" + std::to_string(w) +
                                 "\",\"destinationAccountNumber\":\"es" + std::to_string((w + 1) % 4) +
                                 "\",\"amount\":1}");
        EXPECT_TRUE(r && r->status == 201);
      }
    });
  }
  int64_t expected = 1;
  while (expected <= 60) {
    auto message = reader.next();
    ASSERT_TRUE(message) << "stream stopped before event " << expected;
    if (message->comment) continue;
    ASSERT_EQ(checked_event(*message), expected);
    ++expected;
  }
  first.close();  // the reader goes away mid-stream
  // Back with Last-Event-ID, which wins over ?after=: from 61 on, none lost, none twice.
  HttpClient second(server.port());
  SseReader resumed(second);
  auto again = resumed.open("/events/stream?after=0", {{"Last-Event-ID", "60"}});
  ASSERT_TRUE(again);
  ASSERT_EQ(again->status, 200) << again->body;
  while (expected <= kTotal) {
    auto message = resumed.next();
    ASSERT_TRUE(message) << "stream stopped before event " << expected;
    if (message->comment) continue;
    ASSERT_EQ(checked_event(*message), expected);
    ++expected;
  }
  for (auto& writer : writers) writer.join();
  for (const auto& [name, value] : std::map<std::string, std::string>{{"Last-Event-ID", "x"}, {"Last-Event-ID", "-1"}}) {
    auto bad = client.request("GET", "/events/stream", "", {{name, value}});
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400) << bad->body;
  }
  auto bad_after = client.request("GET", "/events/stream?after=x");
  ASSERT_TRUE(bad_after);
  EXPECT_EQ(bad_after->status, 400) << bad_after->body;
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
}

TEST(HttpEvents, OpenStreamsAreBoundedKeptOpenByHeartbeatsAndEndedByADrain) {
  TempDir dir;
  BalancedServer server(dir.path(), {"--events-streams-max", "2", "--events-heartbeat-ms", "200"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient a(server.port());
  HttpClient b(server.port());
  SseReader stream_a(a);
  SseReader stream_b(b);
  ASSERT_EQ(stream_a.open("/events/stream")->status, 200);
  ASSERT_EQ(stream_b.open("/events/stream")->status, 200);
  HttpClient c(server.port());
  auto third = c.request("GET", "/events/stream");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 503) << third->body;
  EXPECT_NE(third->body.find("\"code\":\"overloaded\""), std::string::npos) << third->body;
  // Nothing happens: a comment line keeps each stream open.
  auto beat = stream_a.next();
  ASSERT_TRUE(beat);
  EXPECT_TRUE(beat->comment);
  // A reader that leaves frees its place at once (balanced sees the connection close).
  a.close();
  bool reopened = false;
  for (int i = 0; i < 50 && !reopened; ++i) {
    HttpClient d(server.port());
    auto r = d.request("GET", "/events/stream?after=0", "", {{"Connection", "close"}});
    reopened = r && r->status == 200;
    if (!reopened) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(reopened);
  // A drain ends the open streams with the body's last chunk, and balanced exits 0.
  int exit_code = -1;
  std::thread stop([&] { exit_code = server.process().terminate(); });
  while (auto message = stream_b.next()) EXPECT_TRUE(message->comment);
  EXPECT_TRUE(stream_b.ended());
  stop.join();
  EXPECT_EQ(exit_code, 0) << server.log();
}

// A reader that stops reading is cut off once balanced cannot write to it for the read
// timeout: it never holds more than one page for it.
TEST(HttpEvents, AStreamWhoseReaderStopsReadingIsCutOff) {
  TempDir dir;
  BalancedServer server(dir.path(), {"--read-timeout-ms", "1000"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  ASSERT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"cut-a","initialBalance":1000000})")->status, 201);
  ASSERT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"cut-b"})")->status, 201);
  // About 11 MB of events: more than the socket buffers of both ends hold.
  for (int batch = 0; batch < 2; ++batch) {
    std::string body = "{\"transfers\":[";
    for (int i = 0; i < 8000; ++i) {
      if (i > 0) body += ',';
      body += batch_item("cut-" + std::to_string(batch) + "-" + std::to_string(i), "cut-a", "cut-b", 1);
    }
    auto r = client.request("POST", "/accounts/transactions/batch", body + "]}");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  auto open_streams = [&client] {
    auto metrics = client.request("GET", "/metrics");
    const std::string name = "\nbalanced_event_streams_open ";
    const size_t at = metrics ? metrics->body.find(name) : std::string::npos;
    return at == std::string::npos ? -1 : std::stoi(metrics->body.substr(at + name.size()));
  };
  HttpClient sleeper(server.port());
  SseReader stalled(sleeper);
  ASSERT_EQ(stalled.open("/events/stream?after=0")->status, 200);
  EXPECT_EQ(open_streams(), 1);
  int open = 1;
  for (int i = 0; i < 100 && open != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    open = open_streams();
  }
  EXPECT_EQ(open, 0);
  // What it gets when it reads again: what the buffers held, then the close, not the end.
  while (stalled.next()) {
  }
  EXPECT_FALSE(stalled.ended());
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
}

// YYYY-MM-DD of today (UTC), `offset` days away.
std::string utc_date(int offset = 0) {
  const std::time_t now = std::time(nullptr) + static_cast<std::time_t>(offset) * 86'400;
  std::tm parts{};
  ::gmtime_r(&now, &parts);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &parts);
  return text;
}

// DESIGN.md section 11: closing = opening + credits - debits, by type, over whole days.
TEST_F(HttpApi, AStatementAddsUpToTheBalance) {
  create("st-a", 1000);
  create("st-b", 0);
  ASSERT_EQ(transfer("st-1", "st-a", "st-b", 300).status, 201);
  ASSERT_EQ(transfer("st-2", "st-b", "st-a", 50).status, 201);
  ASSERT_EQ(transfer("st-x", "st-b", "st-a", 100'000).status, 422);  // refused: moves nothing
  ASSERT_EQ(call("POST", "/accounts/st-a/withdrawals", R"({"transactionId":"st-w","amount":25})").status, 201);
  ASSERT_EQ(call("POST", "/holds",
                 R"({"holdId":"st-h","sourceAccountNumber":"st-a","destinationAccountNumber":"st-b","amount":40})")
                .status,
            201);
  ASSERT_EQ(call("POST", "/holds/st-h/capture", R"({"captureId":"st-c","amount":15})").status, 201);
  ASSERT_EQ(call("POST", "/transactions/st-c/refunds", R"({"refundId":"st-r","amount":5})").status, 201);
  // Through today, and from yesterday (nothing then): the same flows, opening 0.
  for (const std::string& from : {utc_date(), utc_date(-1)}) {
    auto answer = call("GET", "/accounts/st-a/statement?from=" + from + "&to=" + utc_date());
    ASSERT_EQ(answer.status, 200) << answer.body;
    auto statement = object(answer);
    EXPECT_EQ(statement["accountNumber"], json::value("st-a"));
    EXPECT_EQ(statement["currency"], json::value("USD"));
    EXPECT_EQ(statement["from"], json::value(from));
    EXPECT_EQ(statement["openingBalance"], json::value(0));
    // In: 1000 deposited, 50 transferred, 5 refunded; out: 300 transferred, 25 withdrawn, 15 captured.
    EXPECT_EQ(statement["credits"], json::value(1055));
    EXPECT_EQ(statement["debits"], json::value(340));
    EXPECT_EQ(statement["count"], json::value(6));  // the hold moved no balance
    EXPECT_EQ(statement["closingBalance"], json::value(715));
    const auto balance = object(call("GET", "/accounts/st-a/balance"))["balance"];
    EXPECT_EQ(statement["closingBalance"], balance);
    const auto by_type = statement["byType"].as_object();
    EXPECT_EQ(by_type.at("transfer").at("credits"), json::value(50));
    EXPECT_EQ(by_type.at("transfer").at("debits"), json::value(300));
    EXPECT_EQ(by_type.at("transfer").at("count"), json::value(2));
    EXPECT_EQ(by_type.at("capture").at("debits"), json::value(15));
    EXPECT_EQ(by_type.at("refund").at("credits"), json::value(5));
    EXPECT_EQ(by_type.at("withdrawal").at("debits"), json::value(25));
    EXPECT_EQ(by_type.at("deposit").at("credits"), json::value(1000));
    EXPECT_FALSE(by_type.contains("hold"));
  }
  // Days to come: the balance as it stands, nothing moved.
  auto later = object(call("GET", "/accounts/st-b/statement?from=" + utc_date(1) + "&to=" + utc_date(2)));
  EXPECT_EQ(later["openingBalance"], later["closingBalance"]);
  EXPECT_EQ(later["count"], json::value(0));
  EXPECT_EQ(later["byType"], json::object());
  for (const std::string query : {"", "?from=2026-01-01", "?from=2026-02-30&to=2026-03-01", "?from=2026-1-01&to=2026-01-02",
                                  "?from=2026-03-02&to=2026-03-01", "?from=2025-01-01&to=2026-01-02",
                                  "?from=1969-12-31&to=1970-01-01"}) {
    auto bad = call("GET", "/accounts/st-a/statement" + query);
    EXPECT_EQ(bad.status, 400) << query << " " << bad.body;
    EXPECT_NE(bad.body.find("\"code\":\"invalid_request\""), std::string::npos) << bad.body;
  }
  EXPECT_EQ(call("GET", "/accounts/st-none/statement?from=2026-01-01&to=2026-01-02").status, 404);
  EXPECT_EQ(call("GET", "/accounts/st-a/statement?from=2025-01-01&to=2025-12-31").status, 200);  // 365 days
}

// DESIGN.md section 11: volumes per period and type from totals kept in the commit.
TEST_F(HttpApi, VolumesAreCountedPerPeriodAndType) {
  auto before = object(call("GET", "/reports/volumes?currency=GBP&from=" + utc_date() + "&to=" + utc_date()));
  ASSERT_EQ(before["periods"], json::array());  // no GBP yet
  ASSERT_EQ(call("POST", "/accounts", R"({"accountNumber":"vl-a","currency":"GBP","initialBalance":500})").status, 201);
  ASSERT_EQ(call("POST", "/accounts", R"({"accountNumber":"vl-b","currency":"GBP"})").status, 201);
  ASSERT_EQ(transfer("vl-1", "vl-a", "vl-b", 70).status, 201);
  ASSERT_EQ(transfer("vl-2", "vl-a", "vl-b", 30).status, 201);
  ASSERT_EQ(transfer("vl-x", "vl-a", "vl-b", 100'000).status, 422);  // refused: not counted
  for (const std::string group : {"day", "hour"}) {
    auto answer = call("GET", "/reports/volumes?currency=GBP&groupBy=" + group + "&from=" + utc_date(-1) +
                                  "&to=" + utc_date());
    ASSERT_EQ(answer.status, 200) << answer.body;
    auto report = object(answer);
    EXPECT_EQ(report["groupBy"], json::value(group));
    EXPECT_EQ(report["currency"], json::value("GBP"));
    int64_t transfers = 0, amount = 0, deposits = 0;
    for (const auto& period : report["periods"].as_array()) {
      const std::string start(period.at("start").as_string());
      if (group == "day") EXPECT_NE(start.find("T00:00:00.000Z"), std::string::npos) << start;
      const auto& by_type = period.at("byType").as_object();
      if (by_type.contains("transfer")) {
        transfers += by_type.at("transfer").at("count").as_int64();
        amount += by_type.at("transfer").at("amount").as_int64();
      }
      if (by_type.contains("deposit")) deposits += by_type.at("deposit").at("amount").as_int64();
    }
    EXPECT_EQ(transfers, 2);
    EXPECT_EQ(amount, 100);
    EXPECT_EQ(deposits, 500);
  }
  for (const std::string query : {"?currency=GBP", "?from=2026-01-01&to=2026-01-02", "?currency=gbp&from=2026-01-01&to=2026-01-02",
                                  "?currency=GBP&from=2026-01-01&to=2026-01-02&groupBy=week"}) {
    auto bad = call("GET", "/reports/volumes" + query);
    EXPECT_EQ(bad.status, 400) << query << " " << bad.body;
  }
}

TEST_F(HttpApi, ABalanceAtAPastInstant) {
  create("pit-a", 50);
  create("pit-b", 0);
  ASSERT_EQ(transfer("pit-1", "pit-a", "pit-b", 20).status, 201);
  auto before = call("GET", "/accounts/pit-a/balance?asOf=1970-01-01T00:00:00Z");
  ASSERT_EQ(before.status, 200) << before.body;
  EXPECT_EQ(before.body,
            R"({"accountNumber":"pit-a","balance":0,"currency":"USD","version":0,"asOf":"1970-01-01T00:00:00.000Z"})");
  auto now = object(call("GET", "/accounts/pit-a/balance?asOf=9999-12-31T23:59:59%2B00:00"));
  EXPECT_EQ(now["balance"], json::value(30));
  EXPECT_EQ(now["version"], json::value(2));
  EXPECT_EQ(now["asOf"], json::value("9999-12-31T23:59:59.000Z"));
  expect_problem(call("GET", "/accounts/pit-a/balance?asOf=yesterday"), 400, "invalid_request");
  expect_problem(call("GET", "/accounts/pit-a/balance?asOf=2026-12-06T23:40:00"), 400, "invalid_request");
  expect_problem(call("GET", "/accounts/nobody/balance?asOf=2026-12-06T23:40:00Z"), 404, "account_not_found");
}

TEST_F(HttpApi, AnAnswerToHeadEndsAtItsHeaders) {
  // Pipelined: were the 405's body sent, the next answer would be read from it.
  HttpClient raw(server_->port());
  ASSERT_TRUE(raw.send_raw("HEAD /accounts HTTP/1.1\r\nHost: x\r\n\r\n"
                           "HEAD /no/such/route HTTP/1.1\r\nHost: x\r\n\r\n"
                           "GET /accounts/nobody HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto head = raw.read_response(/*to_head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 405);
  EXPECT_NE(head->header("allow"), "");
  EXPECT_NE(head->header("content-length"), "0");  // what a GET's body would have been
  auto missing = raw.read_response(/*to_head=*/true);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto next = raw.read_response();
  ASSERT_TRUE(next);
  expect_problem(*next, 404, "account_not_found");
}

TEST_F(HttpApi, AnHttp11RequestNeedsExactlyOneHost) {
  for (const char* request : {"GET /healthz HTTP/1.1\r\n\r\n",
                              "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
                              "GET /healthz HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"}) {
    HttpClient raw(server_->port());
    ASSERT_TRUE(raw.send_raw(request));
    auto answer = raw.read_response();
    ASSERT_TRUE(answer) << request;
    expect_problem(*answer, 400, "invalid_request");
    EXPECT_NE(answer->body.find("Host"), std::string::npos) << answer->body;
  }
  HttpClient old(server_->port());  // HTTP/1.0 may leave it out
  ASSERT_TRUE(old.send_raw("GET /healthz HTTP/1.0\r\n\r\n"));
  auto answer = old.read_response();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
}

TEST_F(HttpApi, OversizeBodyAndHeaders) {
  const std::string big(5000, 'x');
  auto body = call("POST", "/accounts/transactions", "{\"x\":\"" + big + "\"}");
  expect_problem(body, 413, "payload_too_large");
  HttpClient headers(server_->port());
  const std::string huge(20000, 'h');
  ASSERT_TRUE(headers.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + huge + "\r\n\r\n"));
  auto r = headers.read_response();
  ASSERT_TRUE(r);
  expect_problem(*r, 431, "headers_too_large");
  // The server is still there.
  EXPECT_EQ(call("GET", "/healthz").status, 200);
}

TEST_F(HttpApi, ABatchAnswersEachItemInOrderAndReplays) {
  create("bat-a", 100);
  create("bat-b", 0);
  const std::string body = "{\"transfers\":[" + batch_item("bat-1", "bat-a", "bat-b", 30) + "," +
                           batch_item("bat-2", "bat-a", "bat-b", 500) + "," +
                           "{\"transactionId\":\"bat-3\",\"sourceAccountNumber\":\"bat-a\",\"amount\":1}," +
                           batch_item("bat-4", "bat-b", "bat-a", 10) + "]}";
  auto first = call("POST", "/accounts/transactions/batch", body);
  ASSERT_EQ(first.status, 200) << first.body;
  auto results = object(first)["results"].as_array();
  ASSERT_EQ(results.size(), 4u);
  const std::vector<std::pair<std::string, std::string>> expected{
      {"committed", "ok"}, {"rejected", "insufficient_funds"}, {"rejected", "invalid_request"}, {"committed", "ok"}};
  for (size_t i = 0; i < results.size(); ++i) {
    auto item = results[i].as_object();
    EXPECT_EQ(item["index"], json::value(static_cast<int64_t>(i)));
    EXPECT_EQ(item["status"], json::value(expected[i].first)) << i;
    EXPECT_EQ(item["code"], json::value(expected[i].second)) << i;
  }
  EXPECT_EQ(results[2].as_object()["transactionId"], json::value("bat-3"));
  auto balance = object(call("GET", "/accounts/bat-b/balance"));
  EXPECT_EQ(balance["balance"], json::value(20));
  // The same batch again: each item by its own id.
  auto again = object(call("POST", "/accounts/transactions/batch", body))["results"].as_array();
  EXPECT_EQ(again[0].as_object()["status"], json::value("replayed"));
  EXPECT_EQ(again[1].as_object()["code"], json::value("insufficient_funds"));
  EXPECT_EQ(again[1].as_object()["replayed"], json::value(true));
  EXPECT_EQ(again[3].as_object()["status"], json::value("replayed"));
  EXPECT_EQ(object(call("GET", "/accounts/bat-b/balance"))["balance"], json::value(20));
  EXPECT_EQ(call("GET", "/transactions/bat-1").status, 200);
}

TEST_F(HttpApi, AnAtomicBatchIsAllOrNothing) {
  create("atom-a", 100);
  create("atom-b", 0);
  const std::string failing = "{\"atomic\":true,\"transfers\":[" + batch_item("atom-1", "atom-a", "atom-b", 60) + "," +
                              batch_item("atom-2", "atom-a", "atom-b", 60) + "]}";
  auto refused = object(call("POST", "/accounts/transactions/batch", failing))["results"].as_array();
  EXPECT_EQ(refused[0].as_object()["code"], json::value("linked_failed"));
  EXPECT_EQ(refused[1].as_object()["code"], json::value("insufficient_funds"));
  EXPECT_EQ(object(call("GET", "/accounts/atom-a/balance"))["balance"], json::value(100));
  EXPECT_EQ(call("GET", "/transactions/atom-1").status, 404);  // nothing recorded
  // An invalid item refuses the whole atomic batch before anything is submitted.
  const std::string invalid = "{\"atomic\":true,\"transfers\":[" + batch_item("atom-3", "atom-a", "atom-b", 1) +
                              ",{\"transactionId\":\"atom-4\"}]}";
  auto not_submitted = object(call("POST", "/accounts/transactions/batch", invalid))["results"].as_array();
  EXPECT_EQ(not_submitted[0].as_object()["code"], json::value("linked_failed"));
  EXPECT_EQ(not_submitted[1].as_object()["code"], json::value("invalid_request"));
  const std::string passing = "{\"atomic\":true,\"transfers\":[" + batch_item("atom-1", "atom-a", "atom-b", 60) + "," +
                              batch_item("atom-5", "atom-b", "atom-a", 10) + "]}";
  auto committed = object(call("POST", "/accounts/transactions/batch", passing));
  EXPECT_EQ(committed["committed"], json::value(2));
  EXPECT_EQ(object(call("GET", "/accounts/atom-a/balance"))["balance"], json::value(50));
}

TEST_F(HttpApi, AMalformedBatchIs400AndChangesNothing) {
  create("mal-a", 100);
  for (const std::string& body : {std::string("not json"), std::string("[]"), std::string("{}"),
                                 std::string("{\"transfers\":[]}"), std::string("{\"transfers\":{}}"),
                                 std::string("{\"transfers\":[],\"atomic\":\"yes\"}")}) {
    expect_problem(call("POST", "/accounts/transactions/batch", body), 400, "invalid_request");
  }
  std::string many = "{\"transfers\":[";
  for (int i = 0; i <= 8190; ++i) many += std::string(i ? "," : "") + "{}";
  many += "]}";
  expect_problem(call("POST", "/accounts/transactions/batch", many), 400, "invalid_request");
  // The batch route takes up to 2 MiB (the others 4 KiB here); beyond is 413.
  // (Only the head is sent: the answer comes as soon as the declared length is read.)
  HttpClient big(server_->port());
  ASSERT_TRUE(big.send_raw("POST /accounts/transactions/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Content-Length: 3145728\r\n\r\n"));
  auto too_large = big.read_response();
  ASSERT_TRUE(too_large);
  expect_problem(*too_large, 413, "payload_too_large");
  HttpClient fits(server_->port());
  ASSERT_TRUE(fits.send_raw("POST /accounts/transactions/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            "Content-Length: 1048576\r\n\r\n" + std::string(1048576, ' ')));
  auto accepted_size = fits.read_response();
  ASSERT_TRUE(accepted_size);
  EXPECT_EQ(accepted_size->status, 400);  // read whole (1 MiB > this server's 4 KiB), then not JSON
  EXPECT_EQ(object(call("GET", "/accounts/mal-a/balance"))["balance"], json::value(100));
}

TEST_F(HttpApi, TheLargestBatchCommitsInOneRequest) {
  create("largest-a", 1'000'000);
  create("largest-b", 0);
  std::string body = "{\"transfers\":[";
  for (int i = 0; i < 8190; ++i) body += std::string(i ? "," : "") + batch_item("lb-" + std::to_string(i), "largest-a", "largest-b", 1);
  body += "]}";
  auto response = call("POST", "/accounts/transactions/batch", body);
  ASSERT_EQ(response.status, 200) << response.body.substr(0, 300);
  EXPECT_EQ(object(response)["committed"], json::value(8190));
  EXPECT_EQ(object(call("GET", "/accounts/largest-b/balance"))["balance"], json::value(8190));
}

TEST_F(HttpApi, PipelinedRequestsAreAnsweredInOrder) {
  create("pipe-a", 10);
  HttpClient pipe(server_->port());
  std::string batch;
  for (int i = 0; i < 5; ++i) {
    batch += "GET /accounts/pipe-a/balance HTTP/1.1\r\nHost: x\r\n\r\n";
    batch += "GET /transactions/none-" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  ASSERT_TRUE(pipe.send_raw(batch));
  for (int i = 0; i < 5; ++i) {
    auto ok = pipe.read_response();
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    auto missing = pipe.read_response();
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
  }
}

TEST_F(HttpApi, GarbageAndTruncatedRequestsDoNotHurtTheServer) {
  const std::vector<std::string> garbage = {
      std::string("\x00\x01\x02\xff\xfe garbage\r\n\r\n", 20),
      "GET\r\n\r\n",
      "FOO / HTTP/9.9\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
      "POST /accounts HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"acc",  // then hang up
      "GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const auto& bytes : garbage) {
    HttpClient bad(server_->port(), 2000);
    ASSERT_TRUE(bad.connect());
    bad.send_raw(bytes);
    auto r = bad.read_response();
    if (r) EXPECT_GE(r->status, 400) << bytes;
    bad.close();
  }
  EXPECT_EQ(call("GET", "/healthz").status, 200);
}

TEST(HttpTimeouts, IdleAndSlowConnectionsAreClosed) {
  TempDir dir;
  BalancedServer server(dir.path(), {"--read-timeout-ms", "500"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient idle(server.port(), 5000);
  ASSERT_TRUE(idle.connect());
  HttpClient slow(server.port(), 5000);
  ASSERT_TRUE(slow.connect());
  ASSERT_TRUE(slow.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n"));  // never finished
  EXPECT_TRUE(idle.closed_by_server());
  EXPECT_TRUE(slow.closed_by_server());
  HttpClient fresh(server.port());
  auto r = fresh.request("GET", "/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(server.process().terminate(), 0);
}

TEST_F(HttpApi, HealthReadinessAndMetrics) {
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  auto ready = call("GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  auto metrics = call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.header("content-type").find("text/plain"), std::string::npos);
  for (const char* name : {"balanced_engine_queue_depth", "balanced_engine_batch_operations_bucket",
                           "balanced_engine_commit_seconds_bucket", "balanced_operations_total",
                           "balanced_http_requests_total"}) {
    EXPECT_NE(metrics.body.find(name), std::string::npos) << name;
  }
  auto echoed = call("GET", "/healthz", "", {{"X-Request-Id", "req-42"}});
  EXPECT_EQ(echoed.header("x-request-id"), "req-42");
}

}  // namespace
}  // namespace balanced::testing
