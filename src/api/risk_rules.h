// --risk-rules FILE (DESIGN.md section 11): the rules in force, reread when the file
// changes. A file that no longer parses keeps the rules before it; the log and
// balanced_risk_rules_reloads_total{result="failed"} say why.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/codes.h"
#include "core/mutex.h"
#include "core/risk.h"
#include "observe/registry.h"
#include "service/file_watch.h"

namespace balanced::api {

// How often the file's stamp is looked at.
inline constexpr int64_t risk_rules_poll_ms_default = 1000;

class RiskRulesFile {
 public:
  // Reads `path` once: an error (the process does not start) when it cannot be read or
  // is not a valid rules file. `review_hold_expiry_s`: the life of a hold a review makes.
  static Result<std::unique_ptr<RiskRulesFile>> open(std::string path, int64_t review_hold_expiry_s,
                                                     observe::Registry& registry,
                                                     int64_t poll_ms = risk_rules_poll_ms_default);
  RiskRulesFile(const RiskRulesFile&) = delete;
  RiskRulesFile& operator=(const RiskRulesFile&) = delete;

  // What an operation is decided by: `single` for a POST /transactions, which a review
  // turns into a hold (elsewhere review denies).
  std::shared_ptr<const core::RiskCheck> check(bool single) const;

 private:
  RiskRulesFile(std::string path, int64_t review_hold_expiry_s, observe::Registry& registry);
  // Reads and parses the file; on success the new rules are in force.
  Status load();

  const std::string path_;
  const int64_t review_hold_expiry_s_;
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Counter& reloads_ok_;
  prometheus::Counter& reloads_failed_;
  prometheus::Gauge& rules_gauge_;
  Mutex load_mutex_;  // one read of the file at a time: the newest read is in force
  mutable Mutex mutex_;
  std::shared_ptr<const core::RiskCheck> single_ GUARDED_BY(mutex_);
  std::shared_ptr<const core::RiskCheck> other_ GUARDED_BY(mutex_);
  std::optional<service::FileWatch> watch_;  // last: stopped first
};

}  // namespace balanced::api
