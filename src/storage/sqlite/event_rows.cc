#include "storage/sqlite/event_rows.h"

#include <charconv>

#include "core/json_codec.h"

namespace balanced::storage::sqlite {
namespace {

bool says(const core::EventBalance& b, const std::string& account, int64_t balance, int64_t version) {
  return b.account_number == account && b.balance == balance && b.version == version;
}

bool parse_int64(std::string_view text, int64_t& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

std::optional<std::string> compact_event_body(const core::Event& event, const core::Transaction& row) {
  if (event.kind != core::EventKind::transaction || event.account || event.balances.size() != 2) return std::nullopt;
  const core::EventBalance& source = event.balances[0];
  const core::EventBalance& destination = event.balances[1];
  if (!says(source, row.source, row.source_balance_after, row.source_version_after) ||
      !says(destination, row.destination, row.destination_balance_after, row.destination_version_after)) {
    return std::nullopt;
  }
  if (source.available == source.balance && destination.available == destination.balance) return std::string();
  return std::to_string(source.available) + "," + std::to_string(destination.available);
}

RowParties row_parties(const Statement& s, int first) {
  return RowParties{.source = s.text_view(first),
                    .destination = s.text_view(first + 1),
                    .source_balance = s.int64(first + 2),
                    .destination_balance = s.int64(first + 3),
                    .source_version = s.int64(first + 4),
                    .destination_version = s.int64(first + 5)};
}

Result<std::string> expand_event_body(std::string_view compact, std::string_view type, int64_t occurred_at_ms,
                                      const RowParties& row, std::string_view transaction_json) {
  core::Event event{.kind = core::EventKind::transaction, .occurred_at_ms = occurred_at_ms};
  event.balances = {
      core::EventBalance{.account_number = std::string(row.source),
                         .balance = row.source_balance,
                         .available = row.source_balance,
                         .version = row.source_version},
      core::EventBalance{.account_number = std::string(row.destination),
                         .balance = row.destination_balance,
                         .available = row.destination_balance,
                         .version = row.destination_version},
  };
  if (!compact.empty()) {
    const size_t comma = compact.find(',');
    if (comma == std::string_view::npos || !parse_int64(compact.substr(0, comma), event.balances[0].available) ||
        !parse_int64(compact.substr(comma + 1), event.balances[1].available)) {
      return Error{Code::internal, "an event's kept balances are malformed: " + std::string(compact)};
    }
  }
  return core::encode_event(event, type, transaction_json);
}

}  // namespace balanced::storage::sqlite
