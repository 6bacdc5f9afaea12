// Request decoding: every malformed input is a 400 naming the field, never a crash or a
// rounded number.
#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <limits>
#include <random>

#include "core/json_codec.h"
#include "core/json_strict.h"
#include "core/validate.h"
#include "net/url.h"
#include "storage/sqlite/journal_codec.h"

namespace balanced::core {
namespace {

Result<Transfer> transfer(std::string_view body, std::string_view key = "") {
  return decode_transfer(body, TransferHeaders{key, ""}, "generated-id");
}


TEST(DecodeTransfer, AcceptsTheSeedShape) {
  auto t = transfer(R"({"transactionId":"t-1","sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5,"timestamp":"2024-01-01T00:00:00Z"})");
  ASSERT_TRUE(t.ok()) << t.error().detail;
  EXPECT_EQ(t.value().id, "t-1");
  EXPECT_EQ(t.value().amount, 5);
  EXPECT_EQ(t.value().client_timestamp, "2024-01-01T00:00:00Z");
  EXPECT_EQ(t.value().request_hash.size(), 64u);
}

TEST(DecodeTransfer, IdFromHeaderOrGenerated) {
  auto from_header = transfer(R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5})", "key-9");
  ASSERT_TRUE(from_header.ok());
  EXPECT_EQ(from_header.value().id, "key-9");
  auto generated = transfer(R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5})");
  ASSERT_TRUE(generated.ok());
  EXPECT_EQ(generated.value().id, "generated-id");
  auto disagree = transfer(R"({"transactionId":"x","sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5})", "y");
  EXPECT_FALSE(disagree.ok());
}

TEST(DecodeTransfer, TimestampDoesNotChangeTheRequestHash) {
  auto a = transfer(R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5,"timestamp":"1"})");
  auto b = transfer(R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5,"timestamp":"2"})");
  auto c = transfer(R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":6})");
  EXPECT_EQ(a.value().request_hash, b.value().request_hash);
  EXPECT_NE(a.value().request_hash, c.value().request_hash);
}

struct BadBody {
  const char* body;
  const char* field;  // expected at the start of the detail
};

class DecodeTransferRejects : public ::testing::TestWithParam<BadBody> {};

TEST_P(DecodeTransferRejects, WithAClearError) {
  auto t = transfer(GetParam().body);
  ASSERT_FALSE(t.ok()) << GetParam().body;
  EXPECT_EQ(t.error().code, Code::invalid_request);
  EXPECT_EQ(t.error().detail.rfind(GetParam().field, 0), 0u) << t.error().detail;
}

INSTANTIATE_TEST_SUITE_P(
    Bodies, DecodeTransferRejects,
    ::testing::Values(
        BadBody{"", "body"}, BadBody{"{", "body"}, BadBody{"[]", "body"}, BadBody{"null", "body"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5)", "body"},
        BadBody{"{\"sourceAccountNumber\":\"\xff\xfe\",\"destinationAccountNumber\":\"b\",\"amount\":5}", "body"},
        BadBody{R"({"destinationAccountNumber":"b","amount":5})", "sourceAccountNumber"},
        BadBody{R"({"sourceAccountNumber":5,"destinationAccountNumber":"b","amount":5})", "sourceAccountNumber"},
        BadBody{R"({"sourceAccountNumber":"a b","destinationAccountNumber":"b","amount":5})", "sourceAccountNumber"},
        BadBody{R"({"sourceAccountNumber":"a","amount":5})", "destinationAccountNumber"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b"})", "amount"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":"5"})", "amount"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":1.5})", "amount"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":1.0})", "amount"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":1e2})", "amount"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":0})", "amount"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":-3})", "amount"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":9223372036854775808})", "amount"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":99999999999999999999999})", "amount"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":true})", "amount"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5,"currency":"usd"})", "currency"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5,"timestamp":{}})", "timestamp"},
        BadBody{R"({"transactionId":"","sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5})", "transactionId"},
        BadBody{R"({"transactionId":"$deposit:a","sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5})", "transactionId"},
        BadBody{R"({"transactionId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5})", "transactionId"},
        // I-JSON (RFC 7493): a repeated member name, a lone surrogate, invalid UTF-8.
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":1,"amount":100})", "body is not I-JSON"},
        BadBody{R"({"sourceAccountNumber":"a","sourceAccountNumber":"c","destinationAccountNumber":"b","amount":1})", "body is not I-JSON"},
        BadBody{R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":1,"timestamp":"\ud800"})", "body"},
        BadBody{"{\"sourceAccountNumber\":\"a\",\"destinationAccountNumber\":\"b\",\"amount\":1,\"timestamp\":\"\xed\xa0\x80\"}", "body"}));

TEST(DecodeCreateAccount, TypeAndMetadata) {
  auto credit = decode_create_account(R"({"accountNumber":"c","type":"credit","overdraftLimit":9,"metadata":{"b":"2","a":"1"}})",
                                      {}, "USD", "");
  ASSERT_TRUE(credit.ok());
  EXPECT_EQ(credit.value().type, AccountType::credit);
  EXPECT_EQ(credit.value().metadata, R"({"a":"1","b":"2"})");
  // An empty object is no metadata, as a merge patch that empties it leaves none.
  auto empty = decode_create_account(R"({"accountNumber":"c","metadata":{}})", {}, "USD", "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty.value().metadata, "");
  EXPECT_EQ(merge_metadata(R"({"a":"1"})", R"({"a":null})").value(), "");
  EXPECT_FALSE(decode_create_account(R"({"accountNumber":"c","type":"savings","overdraftLimit":1})", {}, "USD", "").ok());
  auto query = decode_create_account("", {{"accountNumber", "q"}, {"type", "savings"}}, "USD", "");
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query.value().type, AccountType::savings);
}

TEST(Rfc3339, ParsedToUnixMillisecondsWithOffsetsAndFractions) {
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_ms("2026-12-06T23:40:00Z"), 1796600400000);
  EXPECT_EQ(parse_rfc3339_ms("2026-12-06t23:40:00.5z"), 1796600400500);
  EXPECT_EQ(parse_rfc3339_ms("2026-12-06T23:40:00.123456789Z"), 1796600400123);
  EXPECT_EQ(parse_rfc3339_ms("2026-12-07T01:40:00+02:00"), 1796600400000);
  EXPECT_EQ(parse_rfc3339_ms("2026-12-06T20:10:00-03:30"), 1796600400000);
  EXPECT_EQ(parse_rfc3339_ms("2024-02-29T00:00:00Z"), 1709164800000);
  for (const char* bad : {"", "2026-12-06", "2026-12-06T23:40:00", "2026-12-06 23:40:00Z", "2026-13-06T23:40:00Z",
                          "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-12-06T24:00:00Z",
                          "2026-12-06T23:60:00Z", "2026-12-06T23:40:60Z", "2026-12-06T23:40:00.Z",
                          "2026-12-06T23:40:00+0200", "2026-12-06T23:40:00+24:00", "1969-12-31T23:59:59Z",
                          "2026-12-06T23:40:00Zjunk", "+026-12-06T23:40:00Z", "2026-12-06T23:40:00.1234567890Z"}) {
    EXPECT_FALSE(parse_rfc3339_ms(bad)) << bad;
  }
}

TEST(StrictJson, RefusesRepeatedNamesAtAnyDepthOnly) {
  EXPECT_TRUE(parse_strict_json(R"({"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]})").ok());
  EXPECT_TRUE(check_strict_json(R"({"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]})").ok());
  for (const char* text : {R"({"a":1,"a":1})", R"({"a":{"x":1,"y":2,"x":3}})", R"([{"k":1},{"k":1,"k":2}])",
                           R"({"transfers":[{"a":1}],"transfers":[{"b":2}]})", R"({"a\u0062":1,"ab":2})"}) {
    auto parsed = parse_strict_json(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().code, Code::invalid_request);
    EXPECT_NE(parsed.error().detail.find("is repeated"), std::string::npos) << parsed.error().detail;
    EXPECT_FALSE(check_strict_json(text).ok()) << text;
  }
  // A name split across the parser's internal buffers is still one name.
  std::string long_name(5000, 'n');
  EXPECT_FALSE(check_strict_json("{\"" + long_name + "\":1,\"" + long_name + "\":2}").ok());
  EXPECT_TRUE(check_strict_json("{\"" + long_name + "\":1,\"" + long_name + "x\":2}").ok());
}

TEST(StrictJson, KeepsNumbersAndRefusesWhatIsNotOneValue) {
  auto parsed = parse_strict_json(R"({"max":9223372036854775807,"min":-9223372036854775808,"u":18446744073709551615})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.value().as_object().at("max").as_int64(), INT64_MAX);
  EXPECT_EQ(parsed.value().as_object().at("min").as_int64(), INT64_MIN);
  EXPECT_EQ(parsed.value().as_object().at("u").as_uint64(), UINT64_MAX);
  for (const char* text : {"", "{", "{} {}", "[1,]", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\\ud800\"}",
                           "\"\xff\"", "[[[[[[[[[1]]]]]]]]]"}) {
    EXPECT_FALSE(parse_strict_json(text).ok()) << text;
    EXPECT_FALSE(check_strict_json(text).ok()) << text;
  }
  EXPECT_TRUE(parse_strict_json("{\"a\":\"\\ud83d\\ude00\"}").ok());  // a surrogate pair
  EXPECT_TRUE(parse_strict_json("[[[[[[[[1]]]]]]]]").ok());                // depth 8
}

TEST(DecodeTransfer, AcceptsInt64Max) {
  auto t = transfer(R"({"sourceAccountNumber":"a","destinationAccountNumber":"b","amount":9223372036854775807})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value().amount, INT64_MAX);
}

TEST(DecodeCreateAccount, BodyQueryAndDefaults) {
  auto body = decode_create_account(R"({"accountNumber":"acc-1","initialBalance":100,"overdraftLimit":5,"currency":"EUR"})", {}, "USD", "");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body.value().currency, "EUR");
  EXPECT_EQ(body.value().overdraft_limit, 5);
  auto query = decode_create_account("", {{"accountNumber", "acc-2"}, {"initialBalance", "7"}}, "USD", "");
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query.value().initial_balance, 7);
  EXPECT_EQ(query.value().currency, "USD");
  EXPECT_FALSE(decode_create_account("", {{"accountNumber", "a"}, {"initialBalance", "1.5"}}, "USD", "").ok());
  EXPECT_FALSE(decode_create_account("", {{"accountNumber", "a"}, {"initialBalance", "+1"}}, "USD", "").ok());
  EXPECT_FALSE(decode_create_account("", {{"initialBalance", "1"}}, "USD", "").ok());
  EXPECT_FALSE(decode_create_account(R"({"accountNumber":"a","initialBalance":-1})", {}, "USD", "").ok());
  EXPECT_FALSE(decode_create_account(R"({"accountNumber":"a","overdraftLimit":-1})", {}, "USD", "").ok());
  EXPECT_FALSE(decode_create_account(R"({"accountNumber":"$issuer:USD"})", {}, "USD", "").ok());
}

TEST(Encode, TransactionAndTime) {
  EXPECT_EQ(format_time_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_time_ms(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(format_time_ms(-5), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_time_ms(951'782'400'999), "2000-02-29T00:00:00.999Z");
  EXPECT_EQ(format_time_ms(253'402'300'799'999), "9999-12-31T23:59:59.999Z");
  // The same text as gmtime_r gives, across the years a ledger can hold.
  const auto gmtime_text = [](int64_t ms) {
    const time_t seconds = static_cast<time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[40];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(ms % 1000));
    return std::string(text);
  };
  std::mt19937_64 random(11);
  for (int i = 0; i < 100'000; ++i) {
    const int64_t ms = static_cast<int64_t>(random() % 253'402'300'800'000ULL);
    ASSERT_EQ(format_time_ms(ms), gmtime_text(ms)) << ms;
    // And a time after it, the same day or the next (each thread keeps the last date).
    const int64_t next = std::min<int64_t>(ms + static_cast<int64_t>(random() % 100'000'000), 253'402'300'799'999);
    ASSERT_EQ(format_time_ms(next), gmtime_text(next)) << next;
  }
  EXPECT_EQ(json_string("a\"b\\\n\xc3z"), R"("a\"b\\\u000a\u00c3z")");
  Transaction t{.sequence = 3, .id = "x", .source = "a", .destination = "b", .amount = 1,
                .currency = "USD", .client_timestamp = "quote\"d"};
  EXPECT_NE(encode_transaction(t).find(R"("timestamp":"quote\"d")"), std::string::npos);
}

TEST(Codec, EncodersWriteEveryFieldExactly) {
  const Account a{.number = "acc-1", .currency = "USD", .balance = -250, .overdraft_limit = 500,
                  .version = 7, .created_at_ms = 1'764'892'800'000, .updated_at_ms = 1'764'892'800'123};
  EXPECT_EQ(encode_account(a),
            R"({"accountNumber":"acc-1","type":"checking","status":"active","currency":"USD","balance":-250,)"
            R"("available":250,"pendingDebits":0,"pendingCredits":0,"overdraftLimit":500,)"
            R"("version":7,"createdAt":"2025-12-05T00:00:00.000Z","updatedAt":"2025-12-05T00:00:00.123Z"})");
  EXPECT_EQ(encode_balance(a),
            R"({"accountNumber":"acc-1","balance":-250,"available":250,"pendingDebits":0,"pendingCredits":0,)"
            R"("currency":"USD","version":7,"status":"active","asOf":"2025-12-05T00:00:00.123Z"})");
  Account frozen = a;
  frozen.type = AccountType::credit;
  frozen.status = AccountStatus::frozen;
  frozen.pending_debits = 100;
  frozen.pending_credits = 30;
  frozen.metadata = R"({"k":"v"})";
  EXPECT_EQ(encode_account(frozen),
            R"({"accountNumber":"acc-1","type":"credit","status":"frozen","currency":"USD","balance":-250,)"
            R"("available":150,"pendingDebits":100,"pendingCredits":30,"overdraftLimit":500,)"
            R"("version":7,"metadata":{"k":"v"},"createdAt":"2025-12-05T00:00:00.000Z",)"
            R"("updatedAt":"2025-12-05T00:00:00.123Z"})");
  // A credit line near 2^63 on a positive balance: available beyond int64, shown clamped.
  const Account wide{.number = "w", .currency = "USD", .balance = 5, .overdraft_limit = issuer_overdraft_limit};
  EXPECT_NE(encode_balance(wide).find(R"("available":9223372036854775807)"), std::string::npos);
  const Transaction committed{.sequence = 42, .id = "t-1", .type = TransactionType::transfer,
                              .source = "a", .destination = "b", .amount = 99, .currency = "EUR",
                              .status = TransactionStatus::committed, .source_balance_after = 1,
                              .destination_balance_after = 2, .created_at_ms = 0};
  EXPECT_EQ(encode_transaction(committed),
            R"({"transactionId":"t-1","sequence":42,"type":"transfer","sourceAccountNumber":"a",)"
            R"("destinationAccountNumber":"b","amount":99,"currency":"EUR","status":"committed",)"
            R"("sourceBalanceAfter":1,"destinationBalanceAfter":2,"createdAt":"1970-01-01T00:00:00.000Z"})");
  Transaction rejected = committed;
  rejected.sequence = 0;
  rejected.currency.clear();
  rejected.status = TransactionStatus::rejected;
  rejected.reject_code = Code::insufficient_funds;
  rejected.client_timestamp = "2025-12-05T00:00:00Z";
  EXPECT_EQ(encode_transaction(rejected),
            R"({"transactionId":"t-1","type":"transfer","sourceAccountNumber":"a",)"
            R"("destinationAccountNumber":"b","amount":99,"status":"rejected",)"
            R"("rejectCode":"insufficient_funds","timestamp":"2025-12-05T00:00:00Z",)"
            R"("createdAt":"1970-01-01T00:00:00.000Z"})");
}

TEST(Codec, EncodersHaveRoomForTheLongestEscapesAndNumbers) {
  // Every string field at 64 bytes that each escape to six, every number at its longest.
  const std::string worst(64, '\x01');
  std::string escaped;
  for (int i = 0; i < 64; ++i) escaped += "\\u0001";
  const int64_t lowest = std::numeric_limits<int64_t>::min();
  const Account a{.number = worst, .currency = worst, .balance = lowest, .overdraft_limit = lowest,
                  .version = lowest, .created_at_ms = 253'402'300'799'999,  // 9999-12-31T23:59:59.999Z
                  .updated_at_ms = 253'402'300'799'999};
  const std::string account = encode_account(a);
  EXPECT_EQ(account.substr(0, 19 + escaped.size()), "{\"accountNumber\":\"" + escaped + "\"");
  EXPECT_NE(account.find("\"balance\":-9223372036854775808,"), std::string::npos);
  EXPECT_EQ(account.back(), '}');
  EXPECT_EQ(encode_balance(a).back(), '}');
  Transaction t{.sequence = std::numeric_limits<int64_t>::max(), .id = worst, .source = worst,
                .destination = worst, .amount = lowest, .currency = worst,
                .source_balance_after = lowest, .destination_balance_after = lowest,
                .client_timestamp = worst, .created_at_ms = lowest};
  const std::string transaction = encode_transaction(t);
  EXPECT_EQ(transaction.substr(0, 19 + escaped.size()), "{\"transactionId\":\"" + escaped + "\"");
  EXPECT_NE(transaction.find("\"timestamp\":\"" + escaped + "\""), std::string::npos);
  EXPECT_NE(transaction.find("\"destinationBalanceAfter\":-9223372036854775808,"), std::string::npos);
  EXPECT_EQ(transaction.back(), '}');
}

TEST(Codec, AnEventsRowIsPutBackWhereItWasLeftOut) {
  Event event{.id = 3, .kind = EventKind::transaction, .occurred_at_ms = 0, .transaction_index = 0,
              .balances = {EventBalance{.account_number = "a", .balance = 1, .available = 1, .version = 2}}};
  const std::string row = R"({"transactionId":"t"})";
  EXPECT_EQ(with_transaction(encode_event(event, "transaction.transfer", ""), row),
            encode_event(event, "transaction.transfer", row));
  EXPECT_EQ(encode_event(event, "transaction.transfer", row),
            R"("apiVersion":"2026-12-06","type":"transaction.transfer","occurredAt":"1970-01-01T00:00:00.000Z",)"
            R"("transaction":{"transactionId":"t"},"balances":[{"accountNumber":"a","balance":1,"available":1,"version":2}]})");
}

TEST(JournalCodec, RoundTripsAndRejectsTruncation) {
  BatchEffects effects;
  effects.created.push_back(Account{.number = "a", .currency = "USD", .balance = 3, .version = 1});
  effects.updated.push_back(Account{.number = "b", .currency = "USD", .balance = -3, .version = 9});
  effects.transactions.push_back(Transaction{.sequence = 7, .id = "t", .source = "b",
                                             .destination = "a", .amount = 3, .currency = "USD",
                                             .status = TransactionStatus::rejected,
                                             .reject_code = Code::insufficient_funds});
  effects.audit.push_back(AuditRecord{.log_id = 4, .operation_type = "transfer",
                                      .operator_name = "op", .detail = "{}",
                                      .prev_hash = std::string(32, '\0'),
                                      .hash = std::string(32, 'h')});
  effects.events.push_back(Event{.id = 11, .kind = EventKind::account_created, .occurred_at_ms = 5,
                                 .account = effects.created[0],
                                 .balances = {EventBalance{.account_number = "a", .balance = 3, .available = 3, .version = 1}}});
  effects.events.push_back(Event{.id = 12, .kind = EventKind::transaction, .occurred_at_ms = 6, .transaction_index = 0,
                                 .balances = {EventBalance{.account_number = "b", .balance = -3, .available = 7, .version = 9},
                                              EventBalance{.account_number = "a", .balance = 3, .available = 3, .version = 1}}});
  const std::string bytes = storage::encode_journal_record(effects);
  auto decoded = storage::decode_journal_record(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.value().created, effects.created);
  EXPECT_EQ(decoded.value().updated, effects.updated);
  EXPECT_EQ(decoded.value().transactions, effects.transactions);
  EXPECT_EQ(decoded.value().audit.at(0).hash, effects.audit.at(0).hash);
  ASSERT_EQ(decoded.value().events.size(), 2u);
  EXPECT_EQ(decoded.value().events[1].id, 12);
  EXPECT_EQ(decoded.value().events[1].kind, EventKind::transaction);
  EXPECT_EQ(decoded.value().events[1].transaction_index, 0);
  ASSERT_EQ(decoded.value().events[1].balances.size(), 2u);
  EXPECT_EQ(decoded.value().events[1].balances[0].account_number, "b");
  EXPECT_EQ(decoded.value().events[1].balances[0].available, 7);
  EXPECT_EQ(decoded.value().events[1].balances[1].version, 1);
  EXPECT_FALSE(decoded.value().events[1].account);
  EXPECT_EQ(decoded.value().events[0].transaction_index, -1);
  ASSERT_TRUE(decoded.value().events[0].account);
  EXPECT_EQ(*decoded.value().events[0].account, effects.created[0]);
  // An event naming a row the record does not hold is corrupt.
  BatchEffects dangling = effects;
  dangling.events[1].transaction_index = 1;
  EXPECT_FALSE(storage::decode_journal_record(storage::encode_journal_record(dangling)).ok());
  for (size_t cut = 0; cut < bytes.size(); cut += 7) {
    EXPECT_FALSE(storage::decode_journal_record(bytes.substr(0, cut)).ok()) << cut;
  }
}

}  // namespace
}  // namespace balanced::core

namespace balanced::net {
namespace {

TEST(Target, PercentAndFormDecoding) {
  EXPECT_EQ(percent_decode("/accounts/a%3Ab", false), "/accounts/a:b");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_FALSE(percent_decode("%", false));
  EXPECT_FALSE(percent_decode("%4", false));
  EXPECT_FALSE(percent_decode("%zz", false));
  EXPECT_FALSE(percent_decode("%00", false));
  std::vector<std::pair<std::string, std::string>> out;
  ASSERT_TRUE(decode_form("a=1&b=&c&&d=x%20y", out));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[1], (std::pair<std::string, std::string>{"b", ""}));
  EXPECT_EQ(out[2], (std::pair<std::string, std::string>{"c", ""}));
  EXPECT_EQ(out[3].second, "x y");
  out.clear();
  EXPECT_FALSE(decode_form("a=%G1", out));
}

}  // namespace
}  // namespace balanced::net
