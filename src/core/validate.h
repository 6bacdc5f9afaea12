// Field rules shared by the API decoder and the ledger.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace balanced::core {

// 1–64 characters of [A-Za-z0-9._:-].
bool is_valid_account_number(std::string_view number);
// Three upper-case ASCII letters (the ISO-4217 shape).
bool is_valid_currency(std::string_view currency);
// 1–64 characters of [A-Za-z0-9._:-], the same alphabet as account numbers, so an id is
// always safe in a URL path.
bool is_valid_transaction_id(std::string_view id);
// 1–64 printable ASCII characters.
bool is_valid_client_timestamp(std::string_view timestamp);
bool is_valid_operator(std::string_view name);
// A base-10 integer with an optional leading '-', no '+', no spaces, in int64 range.
std::optional<int64_t> parse_int64(std::string_view text);
// An RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), 't' and 'z'
// accepted, a leap second refused) as Unix milliseconds, the fraction cut to
// milliseconds; nullopt for anything else or a year outside 1970..9999.
std::optional<int64_t> parse_rfc3339_ms(std::string_view text);

}  // namespace balanced::core
