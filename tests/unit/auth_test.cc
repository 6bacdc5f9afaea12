// The JWT verifier against tokens minted by an independent implementation (PyJWT, run
// by the test), the RFC 7515 / 8037 example vectors, our own signing round trip, the
// verified-token cache and the authorization table of DESIGN.md section 8.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "auth/base64url.h"
#include "auth/gate.h"
#include "auth/jwt.h"
#include "auth/key_source.h"
#include "auth/sign.h"
#include "support/process.h"

namespace balanced::auth {
namespace {
namespace json = boost::json;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs the PyJWT minting script once for the whole suite.
class PyJwtTokens : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    const std::string command = "/usr/bin/python3 " BALANCED_SOURCE_DIR "/tests/auth/mint_tokens.py " +
                                dir_->path().string() + " > " + (dir_->path() / "mint.log").string() + " 2>&1";
    minted_ = std::system(command.c_str()) == 0;
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override {
    ASSERT_TRUE(minted_) << "mint_tokens.py failed (needs /usr/bin/python3 with python3-jwt): "
                         << read_file(dir_->path() / "mint.log");
  }
  static testing::TempDir* dir_;
  static bool minted_;
};
testing::TempDir* PyJwtTokens::dir_ = nullptr;
bool PyJwtTokens::minted_ = false;

TEST_F(PyJwtTokens, EveryCaseGetsItsExpectedOutcome) {
  auto keys = KeySet::parse(read_file(dir_->path() / "jwks.json"));
  ASSERT_TRUE(keys.ok()) << keys.error().detail;
  EXPECT_EQ(keys.value().size(), 5u);
  const json::object manifest = json::parse(read_file(dir_->path() / "cases.json")).as_object();
  Verifier verifier(VerifierOptions{.issuer = std::string(manifest.at("issuer").as_string()),
                                    .audience = std::string(manifest.at("audience").as_string()),
                                    .leeway_s = manifest.at("leeway_s").as_int64(),
                                    .hs256_secret = read_file(dir_->path() / "hs256.secret")});
  const int64_t now = manifest.at("now").as_int64();
  size_t checked = 0;
  for (const json::value& entry : manifest.at("cases").as_array()) {
    const json::object& c = entry.as_object();
    const std::string name(c.at("name").as_string());
    const std::string expect(c.at("expect").as_string());
    const Verification result = verifier.verify(c.at("token").as_string(), keys.value(), now);
    if (expect == "ok") {
      ASSERT_TRUE(result.ok()) << name << ": " << failure_name(result.failure) << " " << result.detail;
      EXPECT_EQ(result.principal->subject, c.at("sub").as_string()) << name;
      for (const json::value& account : c.at("accounts").as_array()) {
        EXPECT_TRUE(result.principal->acts_for(account.as_string())) << name;
      }
      EXPECT_TRUE(result.principal->has_scope("balances:read")) << name;
      EXPECT_TRUE(result.principal->has_scope("transactions:write")) << name;
      EXPECT_FALSE(result.principal->has_scope("admin")) << name;
    } else {
      EXPECT_FALSE(result.ok()) << name << " was accepted";
      if (!result.ok()) EXPECT_EQ(failure_name(result.failure), expect) << name << ": " << result.detail;
    }
    ++checked;
  }
  EXPECT_GE(checked, 45u);
}

TEST_F(PyJwtTokens, WithoutTheSecretHs256IsRefused) {
  auto keys = KeySet::parse(read_file(dir_->path() / "jwks.json"));
  ASSERT_TRUE(keys.ok());
  const json::object manifest = json::parse(read_file(dir_->path() / "cases.json")).as_object();
  Verifier verifier(VerifierOptions{.issuer = "https://issuer.test", .audience = "balanced"});
  for (const json::value& entry : manifest.at("cases").as_array()) {
    const json::object& c = entry.as_object();
    if (c.at("name").as_string().find("hs256") == json::string::npos || c.at("expect") != "ok") continue;
    const auto result = verifier.verify(c.at("token").as_string(), keys.value(), manifest.at("now").as_int64());
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(result.failure, Failure::unsupported_alg);
  }
}

TEST(RfcVectors, SignaturesOfTheRfcExamplesVerify) {
  const json::array vectors = json::parse(read_file(BALANCED_SOURCE_DIR "/tests/auth/rfc_vectors.json")).as_array();
  ASSERT_EQ(vectors.size(), 4u);
  for (const json::value& entry : vectors) {
    const json::object& v = entry.as_object();
    const std::string name(v.at("name").as_string());
    const std::string_view jws = v.at("jws").as_string();
    const size_t dot = jws.rfind('.');
    const std::string_view input = jws.substr(0, dot);
    auto signature = base64url_decode(jws.substr(dot + 1));
    ASSERT_TRUE(signature) << name;
    std::string tampered = *signature;
    tampered[3] = static_cast<char>(tampered[3] ^ 1);
    const auto algorithm = algorithm_from_name(v.at("alg").as_string());
    ASSERT_TRUE(algorithm) << name;
    if (*algorithm == Algorithm::hs256) {
      auto key = base64url_decode(v.at("jwk").as_object().at("k").as_string());
      ASSERT_TRUE(key);
      EXPECT_TRUE(verify_hs256(*key, input, *signature)) << name;
      EXPECT_FALSE(verify_hs256(*key, input, tampered)) << name;
      continue;
    }
    auto key = KeySet::parse_key(json::serialize(v.at("jwk")));
    ASSERT_TRUE(key.ok()) << name << ": " << key.error().detail;
    EXPECT_TRUE(verify_signature(*algorithm, key.value().key.get(), input, *signature)) << name;
    EXPECT_FALSE(verify_signature(*algorithm, key.value().key.get(), input, tampered)) << name;
  }
}

TEST(Base64Url, RoundTripsAndRefusesOtherSpellings) {
  for (std::string bytes : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(base64url_decode(base64url_encode(bytes)), bytes);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("Zm9v="));   // padding
  EXPECT_FALSE(base64url_decode("Zm9v+"));   // standard alphabet
  EXPECT_FALSE(base64url_decode("Z"));       // 4k+1
  EXPECT_FALSE(base64url_decode("Zh"));      // leftover bits: "Zg" is the spelling
  EXPECT_TRUE(base64url_decode("Zg"));
}

TEST(Signing, EveryAlgorithmRoundTripsThroughTheJwks) {
  for (Algorithm algorithm : {Algorithm::rs256, Algorithm::ps256, Algorithm::es256, Algorithm::eddsa}) {
    auto key = generate_key(algorithm);
    ASSERT_TRUE(key.ok());
    auto jwk = public_jwk(key.value().get(), algorithm, "k1");
    ASSERT_TRUE(jwk.ok());
    auto keys = KeySet::parse("{\"keys\":[" + jwk.value() + "]}");
    ASSERT_TRUE(keys.ok()) << keys.error().detail;
    auto pem = private_key_pem(key.value().get());
    ASSERT_TRUE(pem.ok());
    auto reread = read_private_key_pem(pem.value());
    ASSERT_TRUE(reread.ok());
    auto token = sign_jwt(reread.value().get(), algorithm, "k1",
                          R"({"sub":"alice","exp":2000,"iss":"i","aud":["x","a"],"scope":"s1 s2","accounts":["b","a"]})");
    ASSERT_TRUE(token.ok());
    Verifier verifier(VerifierOptions{.issuer = "i", .audience = "a"});
    auto result = verifier.verify(token.value(), keys.value(), 1000);
    ASSERT_TRUE(result.ok()) << algorithm_name(algorithm) << ": " << result.detail;
    EXPECT_EQ(result.principal->subject, "alice");
    EXPECT_TRUE(result.principal->acts_for("a"));
    EXPECT_TRUE(result.principal->has_scope("s2"));
    EXPECT_EQ(verifier.verify(token.value(), keys.value(), 2031).failure, Failure::expired);
    EXPECT_TRUE(verifier.verify(token.value(), keys.value(), 2029).ok());
  }
}

TEST(Jwks, RefusesWeakMismatchedAndDuplicateKeys) {
  auto rsa = generate_key(Algorithm::rs256);
  auto jwk = public_jwk(rsa.value().get(), Algorithm::rs256, "same");
  EXPECT_FALSE(KeySet::parse("{\"keys\":[" + jwk.value() + "," + jwk.value() + "]}").ok());
  EXPECT_FALSE(KeySet::parse("[]").ok());
  EXPECT_FALSE(KeySet::parse("{\"keys\":{}}").ok());
  EXPECT_FALSE(KeySet::parse("{").ok());
  // An EC key declared for RS256.
  auto ec = generate_key(Algorithm::es256);
  auto ec_jwk = json::parse(public_jwk(ec.value().get(), Algorithm::es256, "e").value()).as_object();
  ec_jwk["alg"] = "RS256";
  EXPECT_FALSE(KeySet::parse_key(json::serialize(ec_jwk)).ok());
  // A point off the curve.
  ec_jwk["alg"] = "ES256";
  ec_jwk["y"] = base64url_encode(std::string(32, '\x01'));
  EXPECT_FALSE(KeySet::parse_key(json::serialize(ec_jwk)).ok());
  // A 1024-bit RSA key.
  EVP_PKEY* weak = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024});
  ASSERT_NE(weak, nullptr);
  auto weak_jwk = public_jwk(weak, Algorithm::rs256, "w");
  EVP_PKEY_free(weak);
  EXPECT_FALSE(KeySet::parse_key(weak_jwk.value()).ok());
  // Symmetric keys and encryption keys in a shared JWKS are skipped, not errors.
  auto mixed = KeySet::parse("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"},{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"x\",\"e\":\"AQAB\"}," +
                             jwk.value() + "]}");
  ASSERT_TRUE(mixed.ok()) << mixed.error().detail;
  EXPECT_EQ(mixed.value().size(), 1u);
}

TEST(BearerHeader, ParsedPerRfc6750) {
  EXPECT_EQ(bearer_token("Bearer abc.def.ghi"), "abc.def.ghi");
  EXPECT_EQ(bearer_token("bearer   abc"), "abc");
  EXPECT_FALSE(bearer_token("Basic abc"));
  EXPECT_FALSE(bearer_token("Bearer"));
  EXPECT_FALSE(bearer_token("Bearer "));
  EXPECT_FALSE(bearer_token("Bearer a b"));
  EXPECT_FALSE(bearer_token("Bearerabc"));
}

// The authorization table, with tokens of our own signing and an injected clock.
class GateTable : public ::testing::Test {
 protected:
  GateTable()
      : key_(generate_key(Algorithm::es256).value()),
        keys_(KeySet::parse("{\"keys\":[" + public_jwk(key_.get(), Algorithm::es256, "k").value() + "]}").value()),
        gate_(VerifierOptions{.issuer = "iss", .audience = "aud"}, keys_, nullptr, [this] { return now_; }) {}

  std::string token(std::string_view scope, std::string_view accounts, int64_t exp = 10'000) {
    return sign_jwt(key_.get(), Algorithm::es256, "k",
                    "{\"sub\":\"alice\",\"iss\":\"iss\",\"aud\":\"aud\",\"exp\":" + std::to_string(exp) +
                        ",\"scope\":\"" + std::string(scope) + "\",\"accounts\":" + std::string(accounts) + "}")
        .value();
  }
  Admission admit(std::string method, std::string path, std::string bearer, std::string body = "") {
    http::Request request;
    request.method = std::move(method);
    request.path = std::move(path);
    request.body = std::move(body);
    if (!bearer.empty()) request.headers.emplace_back("Authorization", "Bearer " + bearer);
    request.headers.emplace_back("X-Operator", "mallory");
    request.headers.emplace_back("x-auth-subject", "root");
    auto match = contract::api_router().match(request.method, request.path);
    Admission admission = gate_.admit(request, match.route, match);
    last_ = std::move(request);
    return admission;
  }
  static int status(const Admission& admission) { return admission.deny ? admission.deny->status : 200; }

  KeyPointer key_;
  KeySource keys_;
  int64_t now_ = 1000;
  Gate gate_;
  http::Request last_;
};

TEST_F(GateTable, EveryRowOfTheTable) {
  const std::string reader = token("balances:read", "[\"a1\"]");
  const std::string writer = token("transactions:write", "[\"a1\"]");
  const std::string creator = token("accounts:write", "[]");
  const std::string admin = token("admin", "[]");
  for (const char* path : {"/accounts/a1", "/accounts/a1/balance", "/accounts/a1/transactions"}) {
    EXPECT_EQ(status(admit("GET", path, reader)), 200) << path;
    EXPECT_EQ(status(admit("GET", path, writer)), 403) << path;   // scope
    EXPECT_EQ(status(admit("GET", path, admin)), 200) << path;
  }
  EXPECT_EQ(status(admit("GET", "/accounts/a2/balance", reader)), 403);  // not its account
  auto transaction = admit("GET", "/transactions/t1", reader);
  EXPECT_EQ(status(transaction), 200);
  EXPECT_TRUE(transaction.check_answer);
  http::Response theirs{200, "application/json", R"({"sourceAccountNumber":"b1","destinationAccountNumber":"b2"})", {}};
  http::Response ours{200, "application/json", R"({"sourceAccountNumber":"b1","destinationAccountNumber":"a1"})", {}};
  EXPECT_EQ(gate_.check_answer(*transaction.principal, theirs)->status, 403);
  EXPECT_FALSE(gate_.check_answer(*transaction.principal, ours));
  EXPECT_FALSE(gate_.check_answer(*transaction.principal, http::Response{404, "", "", {}}));
  EXPECT_FALSE(admit("GET", "/transactions/t1", admin).check_answer);

  const std::string mine = R"({"transactionId":"t1","sourceAccountNumber":"a1","destinationAccountNumber":"b","amount":1})";
  const std::string theirs_body = R"({"sourceAccountNumber":"b","destinationAccountNumber":"a1","amount":1})";
  auto transfer = admit("POST", "/accounts/transactions", writer, mine);
  EXPECT_EQ(status(transfer), 200);
  EXPECT_TRUE(transfer.idempotent);
  EXPECT_FALSE(admit("POST", "/accounts/transactions", writer, theirs_body).idempotent);
  EXPECT_EQ(status(admit("POST", "/accounts/transactions", writer, theirs_body)), 403);
  EXPECT_EQ(status(admit("POST", "/accounts/transactions", reader, mine)), 403);
  EXPECT_EQ(status(admit("POST", "/accounts/transactions", writer, "{not json")), 400);
  EXPECT_EQ(status(admit("POST", "/accounts/transactions", admin, theirs_body)), 200);
  EXPECT_EQ(status(admit("POST", "/accounts", creator, "{}")), 200);
  EXPECT_EQ(status(admit("POST", "/accounts", writer, "{}")), 403);
  // Not public: health, metrics, unknown routes.
  EXPECT_EQ(status(admit("GET", "/metrics", admin)), 404);
  EXPECT_EQ(status(admit("GET", "/readyz", admin)), 404);
  EXPECT_EQ(status(admit("GET", "/nowhere", admin)), 404);
}

TEST_F(GateTable, NoTokenBadTokenAndSpoofedHeaders) {
  auto none = admit("GET", "/accounts/a1", "");
  ASSERT_EQ(status(none), 401);
  EXPECT_EQ(none.deny->header("WWW-Authenticate"), "Bearer realm=\"balanced\"");
  auto bad = admit("GET", "/accounts/a1", "x.y.z");
  ASSERT_EQ(status(bad), 401);
  EXPECT_NE(bad.deny->header("WWW-Authenticate").find("error=\"invalid_token\""), std::string_view::npos);
  auto scope = admit("GET", "/accounts/a1", token("other", "[\"a1\"]"));
  ASSERT_EQ(status(scope), 403);
  EXPECT_NE(scope.deny->header("WWW-Authenticate").find("insufficient_scope"), std::string_view::npos);
  // The caller's identity headers are gone; X-Operator is the token's subject.
  EXPECT_EQ(status(admit("GET", "/accounts/a1", token("balances:read", "[\"a1\"]"))), 200);
  EXPECT_EQ(last_.header("X-Operator"), "alice");
  EXPECT_FALSE(last_.has_header("X-Auth-Subject"));
}

TEST_F(GateTable, TheCacheHonoursExpiryAndKeyRotation) {
  const std::string reader = token("balances:read", "[\"a1\"]", 2000);
  EXPECT_EQ(status(admit("GET", "/accounts/a1", reader)), 200);
  EXPECT_EQ(status(admit("GET", "/accounts/a1", reader)), 200);  // from the cache
  now_ = 2031;
  EXPECT_EQ(status(admit("GET", "/accounts/a1", reader)), 401);  // expired, cached or not
}

TEST(TokenCacheBound, HoldsAtMostItsEntries) {
  TokenCache cache(TokenCache::shards * 2);
  auto principal = std::make_shared<Principal>();
  principal->expires_s = 100;
  for (int i = 0; i < 1000; ++i) cache.put("token-" + std::to_string(i), 1, principal);
  int found = 0;
  for (int i = 0; i < 1000; ++i) found += cache.find("token-" + std::to_string(i), 1, 0, 0) != nullptr;
  EXPECT_LE(found, static_cast<int>(TokenCache::shards * 2));
  EXPECT_GT(found, 0);
  EXPECT_TRUE(cache.find("token-999", 1, 0, 0));      // the newest stays
  EXPECT_FALSE(cache.find("token-999", 2, 0, 0));     // another key set generation
  EXPECT_FALSE(cache.find("token-999", 1, 100, 0));   // expired
}

// The JWKS-stale alert reads jwks_last_success_timestamp_seconds: for a file it must move
// on with every poll that finds the file as loaded (a file is loaded again only when it
// changes), and stop when the file is gone.
TEST(KeySourceFreshness, APolledFileStaysCurrentUntilItIsGone) {
  testing::TempDir dir;
  auto key = generate_key(Algorithm::es256);
  ASSERT_TRUE(key.ok());
  auto jwk = public_jwk(key.value().get(), Algorithm::es256, "k1");
  ASSERT_TRUE(jwk.ok());
  const auto path = dir.path() / "jwks.json";
  std::ofstream(path) << "{\"keys\":[" << jwk.value() << "]}";
  observe::Registry registry;
  KeySourceStats stats(registry, "test");
  auto source = KeySource::start(file_loader(path.string()), KeySourceOptions{.poll_ms = 10}, &stats);
  ASSERT_TRUE(source.ok()) << source.error().detail;
  EXPECT_GT(stats.last_success_unix_s.Value(), 0);
  const auto waits_for = [&](auto holds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!holds() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return holds();
  };
  // Unchanged and readable: a poll marks it current again.
  stats.last_success_unix_s.Set(0);
  EXPECT_TRUE(waits_for([&] { return stats.last_success_unix_s.Value() > 0; }));
  // Gone: nothing marks it current any more.
  std::filesystem::remove(path);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a poll in flight may still find it
  stats.last_success_unix_s.Set(0);
  const uint64_t loaded = static_cast<uint64_t>(stats.reloads_ok.Value());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // twenty polls
  EXPECT_EQ(stats.last_success_unix_s.Value(), 0);
  EXPECT_EQ(static_cast<uint64_t>(stats.reloads_ok.Value()), loaded);
  EXPECT_EQ(source.value()->current().keys->size(), 1u);  // the keys in use are kept
}

}  // namespace
}  // namespace balanced::auth
