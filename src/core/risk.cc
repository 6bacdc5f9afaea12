#include "core/risk.h"

#include <algorithm>
#include <limits>
#include <set>

#include <boost/json.hpp>

#include "core/json_strict.h"
#include "core/validate.h"

namespace balanced::core {
namespace {

namespace json = boost::json;

Error bad(std::string_view where, std::string_view what) {
  return Error{Code::invalid_request, std::string(where) + ": " + std::string(what)};
}

// A positive int64 (JSON integers only: 1.5 and "5" are refused).
std::optional<int64_t> positive(const json::value& value) {
  if (value.is_int64() && value.get_int64() > 0) return value.get_int64();
  if (value.is_uint64() && value.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
      value.get_uint64() > 0) {
    return static_cast<int64_t>(value.get_uint64());
  }
  return std::nullopt;
}

Result<RiskRule> parse_rule(const json::value& value, const std::string& where) {
  if (!value.is_object()) return bad(where, "a rule is an object {name, when, then}");
  const json::object& object = value.get_object();
  RiskRule rule;
  for (const auto& [key, member] : object) {
    if (key != "name" && key != "when" && key != "then") {
      return bad(where, "unknown member \"" + std::string(key) + "\" (name, when, then)");
    }
  }
  const json::value* name = object.if_contains("name");
  if (name == nullptr || !name->is_string() || name->get_string().empty() ||
      name->get_string().size() > risk_rule_name_bytes_max || name->get_string().starts_with("$")) {
    return bad(where, "name: 1 to " + std::to_string(risk_rule_name_bytes_max) +
                          " bytes of text, not starting with '$'");
  }
  rule.name = std::string(name->get_string());
  const std::string at = where + " (" + rule.name + ")";
  const json::value* then = object.if_contains("then");
  if (then == nullptr || !then->is_string() || (then->get_string() != "deny" && then->get_string() != "review")) {
    return bad(at, "then: \"deny\" or \"review\"");
  }
  rule.then = then->get_string() == "deny" ? RiskDecision::deny : RiskDecision::review;
  const json::value* when = object.if_contains("when");
  if (when == nullptr) return rule;  // no condition: every debit
  if (!when->is_object()) return bad(at, "when: an object of conditions");
  for (const auto& [key, condition] : when->get_object()) {
    const std::string field = at + " when." + std::string(key);
    if (key == "amountGte" || key == "sourceCountLastMinuteGte" || key == "sourceAmountLastDayGte") {
      const auto limit = positive(condition);
      if (!limit) return bad(field, "an integer from 1 to 9223372036854775807");
      if (key == "amountGte") {
        rule.amount_gte = limit;
      } else if (key == "sourceCountLastMinuteGte") {
        rule.source_count_last_minute_gte = limit;
      } else {
        rule.source_amount_last_day_gte = limit;
      }
    } else if (key == "currency") {
      if (!condition.is_string() || !is_valid_currency(condition.get_string())) {
        return bad(field, "a currency code of three capital letters");
      }
      rule.currency = std::string(condition.get_string());
    } else if (key == "type") {
      if (!condition.is_array() || condition.get_array().empty()) {
        return bad(field, "a non-empty list of transfer, deposit, withdrawal, hold, refund");
      }
      for (const json::value& item : condition.get_array()) {
        const auto type = item.is_string() ? type_from_name(item.get_string()) : std::nullopt;
        if (!type || !risk_checked(*type)) {
          return bad(field, "a non-empty list of transfer, deposit, withdrawal, hold, refund");
        }
        if (std::find(rule.types.begin(), rule.types.end(), *type) == rule.types.end()) rule.types.push_back(*type);
      }
    } else {
      return bad(field, "unknown condition (amountGte, type, currency, sourceCountLastMinuteGte, "
                        "sourceAmountLastDayGte)");
    }
  }
  return rule;
}

bool matches(const RiskRule& rule, const RiskInput& input) {
  if (!rule.types.empty() && std::find(rule.types.begin(), rule.types.end(), input.type) == rule.types.end()) {
    return false;
  }
  if (!rule.currency.empty() && rule.currency != input.currency) return false;
  if (rule.amount_gte && input.amount < *rule.amount_gte) return false;
  if (rule.source_count_last_minute_gte &&
      (!input.with_this || input.with_this->count_last_minute < *rule.source_count_last_minute_gte)) {
    return false;
  }
  if (rule.source_amount_last_day_gte &&
      (!input.with_this || input.with_this->amount_last_day < *rule.source_amount_last_day_gte)) {
    return false;
  }
  return true;
}

}  // namespace

std::string_view risk_decision_name(RiskDecision decision) {
  switch (decision) {
    case RiskDecision::allow: return "allow";
    case RiskDecision::review: return "review";
    case RiskDecision::deny: return "deny";
  }
  return "allow";
}

std::optional<RiskDecision> risk_decision_from_name(std::string_view name) {
  if (name == "allow") return RiskDecision::allow;
  if (name == "review") return RiskDecision::review;
  if (name == "deny") return RiskDecision::deny;
  return std::nullopt;
}

bool risk_checked(TransactionType type) {
  return type == TransactionType::transfer || type == TransactionType::deposit ||
         type == TransactionType::withdrawal || type == TransactionType::hold || type == TransactionType::refund;
}

bool counts_as_debit(TransactionType type) { return risk_checked(type) && type != TransactionType::deposit; }

Result<RiskRules> parse_risk_rules(std::string_view text) {
  if (text.size() > risk_rules_file_bytes_max) {
    return Error{Code::invalid_request,
                 "the rules file is larger than " + std::to_string(risk_rules_file_bytes_max) + " bytes"};
  }
  auto parsed = parse_strict_json(text);
  if (!parsed.ok()) return parsed.error();
  const json::value* list = &parsed.value();
  if (list->is_object()) {
    const json::object& top = list->get_object();
    if (top.size() != 1 || !top.contains("rules")) {
      return Error{Code::invalid_request, "the rules file is a list of rules, or {\"rules\": [...]}"};
    }
    list = &top.at("rules");
  }
  if (!list->is_array()) {
    return Error{Code::invalid_request, "the rules file is a list of rules, or {\"rules\": [...]}"};
  }
  if (list->get_array().size() > risk_rules_max) {
    return Error{Code::invalid_request, "more than " + std::to_string(risk_rules_max) + " rules"};
  }
  RiskRules rules;
  std::set<std::string> names;
  size_t index = 0;
  for (const json::value& item : list->get_array()) {
    auto rule = parse_rule(item, "rules[" + std::to_string(index++) + "]");
    if (!rule.ok()) return rule.error();
    if (!names.insert(rule.value().name).second) {
      return Error{Code::invalid_request, "rules: the name \"" + rule.value().name + "\" is used twice"};
    }
    rules.counts_velocity = rules.counts_velocity || rule.value().source_count_last_minute_gte ||
                            rule.value().source_amount_last_day_gte;
    rules.rules.push_back(std::move(rule.value()));
  }
  return rules;
}

void add_debit(Velocity& velocity, int64_t amount) {
  velocity.count_last_minute += velocity.count_last_minute < std::numeric_limits<int64_t>::max() ? 1 : 0;
  velocity.amount_last_day = amount > std::numeric_limits<int64_t>::max() - velocity.amount_last_day
                                 ? std::numeric_limits<int64_t>::max()
                                 : velocity.amount_last_day + amount;
}

bool count_debit(Velocity& velocity, int64_t created_at_ms, int64_t amount, int64_t now_ms) {
  if (created_at_ms <= now_ms - risk_day_ms) return false;
  const int64_t count = velocity.count_last_minute;
  add_debit(velocity, amount);
  if (created_at_ms <= now_ms - risk_minute_ms) velocity.count_last_minute = count;
  return true;
}

std::string encode_risk_hook_request(std::span<const Operation> operations, std::span<const size_t> items) {
  json::array transactions;
  for (const size_t item : items) {
    json::object t;
    if (const auto* transfer = std::get_if<Transfer>(&operations[item])) {
      t["transactionId"] = transfer->id;
      t["type"] = type_name(transfer->type);
      t["sourceAccountNumber"] = transfer->source;
      t["destinationAccountNumber"] = transfer->destination;
      t["amount"] = transfer->amount;
      if (!transfer->currency.empty()) t["currency"] = transfer->currency;
      if (!transfer->reference.empty()) t["reference"] = transfer->reference;
      if (!transfer->metadata.empty()) t["metadata"] = json::parse(transfer->metadata);
    } else if (const auto* refund = std::get_if<Refund>(&operations[item])) {
      t["transactionId"] = refund->id;
      t["type"] = type_name(TransactionType::refund);
      t["refundOf"] = refund->original_id;
      if (refund->amount) t["amount"] = *refund->amount;
      if (!refund->reason.empty()) t["reason"] = refund->reason;
    } else {
      continue;
    }
    transactions.push_back(std::move(t));
  }
  return json::serialize(json::object{{"transactions", std::move(transactions)}});
}

DebitWindow::DebitWindow(std::vector<Debit> debits, int64_t now_ms) {
  std::sort(debits.begin(), debits.end(), [](const Debit& a, const Debit& b) { return a.created_at_ms < b.created_at_ms; });
  for (const Debit& debit : debits) add(debit.created_at_ms, debit.amount);
  velocity(now_ms);
}

void DebitWindow::add(int64_t created_at_ms, int64_t amount) {
  if (created_at_ms <= asked_ms_ - risk_day_ms - slack_ms) return;
  const auto later = [](int64_t t, const Debit& d) { return t < d.created_at_ms; };
  const auto at = debits_.empty() || debits_.back().created_at_ms <= created_at_ms
                      ? debits_.end()
                      : std::upper_bound(debits_.begin(), debits_.end(), created_at_ms, later);
  debits_.insert(at, Debit{.created_at_ms = created_at_ms, .amount = amount});
  sum_ += amount;
}

Velocity DebitWindow::velocity(int64_t now_ms) {
  asked_ms_ = std::max(asked_ms_, now_ms);
  while (!debits_.empty() && debits_.front().created_at_ms <= asked_ms_ - risk_day_ms - slack_ms) {
    sum_ -= debits_.front().amount;
    debits_.pop_front();
  }
  // Left out of the day at now_ms: the oldest few, within the slack.
  __int128 day = sum_;
  for (auto it = debits_.begin(); it != debits_.end() && it->created_at_ms <= now_ms - risk_day_ms; ++it) {
    day -= it->amount;
  }
  const auto minute_begin = std::upper_bound(debits_.begin(), debits_.end(), now_ms - risk_minute_ms,
                                             [](int64_t t, const Debit& d) { return t < d.created_at_ms; });
  constexpr __int128 max = std::numeric_limits<int64_t>::max();
  return Velocity{.count_last_minute = static_cast<int64_t>(debits_.end() - minute_begin),
                  .amount_last_day = static_cast<int64_t>(day > max ? max : day)};
}

RiskVerdict evaluate(const RiskRules& rules, const RiskInput& input) {
  for (const RiskRule& rule : rules.rules) {
    if (matches(rule, input)) return RiskVerdict{.decision = rule.then, .rule = rule.name};
  }
  return {};
}

}  // namespace balanced::core
