// How the events table keeps a transaction's event (schema 14). Most events of a
// transaction say what its row already says: its two parties' balances and versions
// after it. Such an event keeps its row's sequence and, in its body, only what the row
// lacks, the parties' available amounts ("" when each equals the balance, as without
// holds); the feed renders the rest from the row when it is read. Any other event keeps
// its body whole. A transfer's event takes ~50 bytes of the file instead of ~370: fewer
// for the materializer, the WAL and the checkpoints to write.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/codes.h"
#include "core/types.h"
#include "storage/sqlite/sqlite_db.h"

namespace balanced::storage::sqlite {

// The body kept for a transaction's event (its parties' balances, versions and available
// amounts), or nullopt when the row cannot say it and the body is kept whole.
std::optional<std::string> compact_event_body(const core::Event& event, const core::Transaction& row);

// What a transaction's row says of its parties after it.
struct RowParties {
  std::string_view source, destination;
  int64_t source_balance = 0, destination_balance = 0;
  int64_t source_version = 0, destination_version = 0;
};

// The columns of `transactions t` a RowParties is read from, in its order, for a SELECT's
// list; and their reading from column `first` of a row (views into the statement's row:
// valid until its next step).
inline constexpr std::string_view kRowPartiesColumns =
    "t.source_account, t.destination_account, t.source_balance_after, t.destination_balance_after, "
    "t.source_version_after, t.destination_version_after";
RowParties row_parties(const Statement& s, int first);

// The whole body (json_codec.h: encode_event, with `transaction_json` as its transaction,
// none when empty) of an event kept by compact_event_body.
Result<std::string> expand_event_body(std::string_view compact, std::string_view type, int64_t occurred_at_ms,
                                      const RowParties& row, std::string_view transaction_json = {});

}  // namespace balanced::storage::sqlite
