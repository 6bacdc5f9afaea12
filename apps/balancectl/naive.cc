#include "naive.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "core/ledger.h"
#include "load_shape.h"
#include "storage/open.h"

namespace balanced::bench {

namespace {

using storage::mysql::Connection;
using Clock = std::chrono::steady_clock;

constexpr int kAttemptsMax = 20;  // deadlocks and lock waits, per transfer

std::string account_name(size_t index) { return "naive-" + std::to_string(index); }

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status create_accounts(Connection& c, const NaiveOptions& options) {
  if (auto s = c.exec("DELETE FROM accounts WHERE account_number LIKE 'naive-%'"); !s.ok()) return s;
  const int64_t now = now_ms();
  for (size_t start = 0; start < options.accounts; start += 1000) {
    std::string sql =
        "INSERT INTO accounts (account_number, currency, balance, overdraft_limit, version, "
        "created_at, updated_at) VALUES ";
    for (size_t i = start; i < std::min(options.accounts, start + 1000); ++i) {
      if (i > start) sql.push_back(',');
      sql += "('" + account_name(i) + "','USD'," + std::to_string(options.initial_balance) +
             ",0,1," + std::to_string(now) + "," + std::to_string(now) + ")";
    }
    if (auto s = c.exec(sql); !s.ok()) return s;
  }
  return c.exec("COMMIT");
}

// One transfer, the seed's way. True when committed; false when rejected (funds).
Result<bool> transfer(Connection& c, const std::string& id, const std::string& source,
                      const std::string& destination, int64_t amount) {
  const std::string& first = std::min(source, destination);
  const std::string& second = std::max(source, destination);
  int64_t source_balance = 0;
  int64_t destination_balance = 0;
  for (const std::string* number : {&first, &second}) {
    std::string sql = "SELECT balance FROM accounts WHERE account_number = ";
    c.append_quoted(sql, *number);
    sql += " FOR UPDATE";
    auto rows = c.query(sql);
    if (!rows.ok()) return rows.error();
    if (!rows.value().next()) return Error{Code::account_not_found, *number};
    (*number == source ? source_balance : destination_balance) = rows.value().int64(0);
  }
  if (source_balance < amount) {
    if (auto s = c.exec("ROLLBACK"); !s.ok()) return s.error();
    return false;
  }
  const std::string now = std::to_string(now_ms());
  const std::string a = std::to_string(amount);
  std::vector<std::string> statements;
  std::string debit = "UPDATE accounts SET balance = balance - " + a +
                      ", version = version + 1, updated_at = " + now + " WHERE account_number = ";
  c.append_quoted(debit, source);
  std::string credit = "UPDATE accounts SET balance = balance + " + a +
                       ", version = version + 1, updated_at = " + now + " WHERE account_number = ";
  c.append_quoted(credit, destination);
  std::string record =
      "INSERT INTO transactions (transaction_id, type, source_account, destination_account, "
      "amount, currency, status, reject_code, source_balance_after, destination_balance_after, "
      "request_hash, client_timestamp, created_at) VALUES (";
  c.append_quoted(record, id);
  record += ",'transfer',";
  c.append_quoted(record, source);
  record += ",";
  c.append_quoted(record, destination);
  record += "," + a + ",'USD','committed',NULL," + std::to_string(source_balance - amount) + "," +
            std::to_string(destination_balance + amount) + ",'','', " + now + ")";
  std::string audit =
      "INSERT INTO audit_record (operation_type, operator, operation_time, detail) VALUES "
      "('transfer','naive'," + now + ",";
  c.append_quoted(audit, "{\"transactionId\":\"" + id + "\"}");
  audit += ")";
  for (const std::string* sql : {&debit, &credit, &record, &audit}) {
    if (auto s = c.exec(*sql); !s.ok()) return s.error();
  }
  if (auto s = c.exec("COMMIT"); !s.ok()) return s.error();
  return true;
}

}  // namespace

int run_naive(const NaiveOptions& options) {
  auto config = storage::mysql_connection(options.db, options.password_file);
  if (!config.ok()) {
    std::fprintf(stderr, "naive: %s\n", config.error().detail.c_str());
    return 2;
  }
  const std::vector<std::string> session{"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                                         "SET SESSION autocommit = 0"};
  auto open = [&]() -> Result<std::unique_ptr<Connection>> {
    auto c = Connection::open(config.value());
    if (!c.ok()) return c;
    for (const auto& statement : session) {
      if (auto s = c.value()->exec(statement); !s.ok()) return s.error();
    }
    return c;
  };
  {
    auto c = open();
    if (!c.ok()) {
      std::fprintf(stderr, "naive: %s\n", c.error().detail.c_str());
      return 1;
    }
    if (auto s = create_accounts(*c.value(), options); !s.ok()) {
      std::fprintf(stderr, "naive: setup: %s\n", s.detail().c_str());
      return 1;
    }
  }
  const AccountPicker picker(options.accounts, options.zipf_exponent);
  std::atomic<uint64_t> committed{0}, rejected{0}, failed{0}, retries{0};
  std::vector<std::vector<uint32_t>> latencies(options.connections);
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(options.duration_s * 1000));
  const auto started = Clock::now();
  std::vector<std::thread> workers;
  for (size_t w = 0; w < options.connections; ++w) {
    workers.emplace_back([&, w] {
      auto c = open();
      if (!c.ok()) {
        failed.fetch_add(1);
        return;
      }
      std::mt19937_64 random(w * 7919 + 17);
      uint64_t sequence = 0;
      while (Clock::now() < deadline) {
        const size_t source = picker.pick(random);
        size_t destination = picker.pick(random);
        while (destination == source) destination = picker.pick(random);
        const int64_t amount = std::uniform_int_distribution<int64_t>(1, options.amount_max)(random);
        const std::string id = "naive-" + std::to_string(w) + "-" + std::to_string(++sequence) +
                               "-" + std::to_string(now_ms());
        const auto begun = Clock::now();
        Result<bool> outcome = false;
        for (int attempt = 0; attempt < kAttemptsMax; ++attempt) {
          outcome = transfer(*c.value(), id, account_name(source), account_name(destination), amount);
          if (outcome.ok() || outcome.error().code != Code::unavailable) break;
          (void)c.value()->exec("ROLLBACK");
          retries.fetch_add(1);
        }
        if (!outcome.ok()) {
          (void)c.value()->exec("ROLLBACK");
          failed.fetch_add(1);
          if (c.value()->broken()) return;
          continue;
        }
        (outcome.value() ? committed : rejected).fetch_add(1);
        latencies[w].push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - begun).count()));
      }
    });
  }
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  std::vector<uint32_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  const double rate = static_cast<double>(committed + rejected) / elapsed;
  std::printf("naive: connections=%zu accounts=%zu zipf=%.2f duration_s=%.2f\n", options.connections,
              options.accounts, options.zipf_exponent, elapsed);
  std::printf("transfers: committed=%llu rejected=%llu failed=%llu retries=%llu\n",
              static_cast<unsigned long long>(committed.load()),
              static_cast<unsigned long long>(rejected.load()),
              static_cast<unsigned long long>(failed.load()),
              static_cast<unsigned long long>(retries.load()));
  std::printf("RESULT requests_per_s=%.0f p50_ms=%.3f p99_ms=%.3f\n", rate, percentile(all, 0.5),
              percentile(all, 0.99));
  return committed > 0 && failed == 0 ? 0 : 1;
}

}  // namespace balanced::bench
