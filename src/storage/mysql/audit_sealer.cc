#include "storage/mysql/audit_sealer.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/audit.h"
#include "storage/mysql/statements.h"

namespace balanced::storage::mysql {

Result<SealResult> AuditSealer::seal(Connection& c, int64_t fence, size_t records_max) {
  auto run = [&]() -> Result<SealResult> {
    // A bound stays true once learnt, so the barrier is taken only when the records
    // below the last bound are all linked: once per run of the job, not per call.
    int64_t final_log_id = final_log_id_.load(std::memory_order_relaxed);
    if (final_log_id <= linked_log_id_.load(std::memory_order_relaxed)) {
      if (auto s = c.exec_many(
              "SELECT id FROM audit_barrier WHERE id = 1 FOR UPDATE;"
              "SELECT COALESCE(MAX(log_id), 0) INTO @balanced_final_log_id FROM audit_record;"
              "COMMIT");
          !s.ok()) {
        return s.error();
      }
      auto bound_rows = c.query("SELECT @balanced_final_log_id");
      if (!bound_rows.ok()) return bound_rows.error();
      final_log_id = bound_rows.value().next() ? bound_rows.value().int64(0) : 0;
      final_log_id_.store(final_log_id, std::memory_order_relaxed);
    }

    auto head_rows =
        c.query("SELECT sealed_seq, head, fence, linked_log_id FROM audit_chain WHERE id = 1 FOR UPDATE");
    if (!head_rows.ok()) return head_rows.error();
    Rows& head_row = head_rows.value();
    if (!head_row.next()) return Error{Code::internal, "audit_chain has no head row"};
    SealResult result{.sealed = 0, .chain_head = head_row.int64(0)};
    std::string head = head_row.text(1);
    if (head_row.int64(2) > fence) {
      return Error{Code::forbidden, "fencing token " + std::to_string(fence) +
                                        " is older than " + std::to_string(head_row.int64(2))};
    }
    const int64_t linked_from = head_row.int64(3);
    // Records above the watermark already linked were sealed before version 2.
    auto pending = c.query(
        "SELECT r.log_id, r.operation_type, r.operator, r.operation_time, r.detail "
        "FROM audit_record r WHERE r.log_id > " + std::to_string(linked_from) +
        " AND r.log_id <= " + std::to_string(final_log_id) +
        " AND NOT EXISTS (SELECT 1 FROM audit_link k WHERE k.log_id = r.log_id) "
        "ORDER BY r.log_id LIMIT " + std::to_string(records_max));
    if (!pending.ok()) return pending.error();
    std::vector<std::pair<int64_t, core::AuditRecord>> records;
    while (pending.value().next()) {
      const Rows& r = pending.value();
      records.emplace_back(r.int64(0), core::AuditRecord{.operation_type = r.text(1),
                                                         .operator_name = r.text(2),
                                                         .operation_time_ms = r.int64(3),
                                                         .detail = r.text(4)});
    }
    // Below the bound every id is final: past the last record read (or, with fewer
    // than records_max, the whole way) nothing is left to link.
    const int64_t linked_to =
        !records.empty() && records.size() == records_max ? records.back().first : final_log_id;
    const int64_t watermark = std::max(linked_from, linked_to);
    Status linked = for_each_chunk(records.size(), rows_max_, [&](size_t start, size_t end) {
      std::string sql = "INSERT INTO audit_link (log_id, chain_seq, prev_hash, hash) VALUES ";
      for (size_t i = start; i < end; ++i) {
        auto& [log_id, record] = records[i];
        head = core::chain_audit_record(record, head);
        ++result.chain_head;
        sql += i == start ? "(" : ",(";
        sql += std::to_string(log_id) + "," + std::to_string(result.chain_head) + ",";
        Connection::append_hex(sql, record.prev_hash);
        sql.push_back(',');
        Connection::append_hex(sql, record.hash);
        sql.push_back(')');
      }
      return c.exec(sql);
    });
    if (!linked.ok()) return linked.error();
    std::string update = "UPDATE audit_chain SET sealed_seq = " +
                         std::to_string(result.chain_head) + ", head = ";
    Connection::append_hex(update, head);
    update += ", fence = " + std::to_string(fence) +
              ", linked_log_id = " + std::to_string(watermark) + " WHERE id = 1";
    if (auto s = c.exec(update); !s.ok()) return s.error();
    if (auto s = c.exec("COMMIT"); !s.ok()) {
      c.discard();
      return s.error();
    }
    linked_log_id_.store(watermark, std::memory_order_relaxed);
    result.sealed = static_cast<int64_t>(records.size());
    return result;
  };
  auto result = run();
  if (!result.ok() && !c.exec("ROLLBACK").ok()) c.discard();
  return result;
}

// Cheap enough for every run of the job: only the records above the watermark.
Result<int64_t> AuditSealer::unsealed(Connection& c) {
  auto rows = c.query(
      "SELECT COUNT(*) FROM audit_record r "
      "WHERE r.log_id > (SELECT linked_log_id FROM audit_chain WHERE id = 1) "
      "AND NOT EXISTS (SELECT 1 FROM audit_link k WHERE k.log_id = r.log_id)");
  if (!rows.ok()) return rows.error();
  return rows.value().next() ? rows.value().int64(0) : 0;
}

}  // namespace balanced::storage::mysql
