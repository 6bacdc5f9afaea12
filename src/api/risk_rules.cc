#include "api/risk_rules.h"

#include <fstream>
#include <sstream>

#include "observe/log.h"

namespace balanced::api {

RiskRulesFile::RiskRulesFile(std::string path, int64_t review_hold_expiry_s, observe::Registry& registry)
    : path_(std::move(path)),
      review_hold_expiry_s_(review_hold_expiry_s),
      reloads_(registry.counters("balanced_risk_rules_reloads_total",
                                 "Reads of the --risk-rules file, by result (a failed one keeps the rules before)")),
      reloads_ok_(reloads_.Add({{"result", "ok"}})),
      reloads_failed_(reloads_.Add({{"result", "failed"}})),
      rules_gauge_(registry.gauge("balanced_risk_rules", "Risk rules in force")) {}

Result<std::unique_ptr<RiskRulesFile>> RiskRulesFile::open(std::string path, int64_t review_hold_expiry_s,
                                                           observe::Registry& registry, int64_t poll_ms) {
  std::unique_ptr<RiskRulesFile> file(new RiskRulesFile(std::move(path), review_hold_expiry_s, registry));
  RiskRulesFile* self = file.get();
  // Watched before the first read: a change in between is read again, never missed.
  file->watch_.emplace(std::vector<std::string>{self->path_}, poll_ms, "risk-rules", [self] {
    if (auto loaded = self->load(); !loaded.ok()) {
      observe::log(observe::LogLevel::error, "the risk rules file is not valid: the rules before it stay in force",
                   {{"file.path", self->path_}, {"error", loaded.detail()}});
    }
  });
  if (auto loaded = file->load(); !loaded.ok()) {
    return Error{Code::invalid_request, "--risk-rules " + file->path_ + ": " + loaded.detail()};
  }
  return file;
}

Status RiskRulesFile::load() {
  MutexLock serial(load_mutex_);
  std::ifstream in(path_, std::ios::binary);
  std::string text;
  if (in) {
    // One byte past the bound: a larger file is refused by the parser, never read whole.
    text.resize(core::risk_rules_file_bytes_max + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
  }
  auto parsed = in || in.eof() ? core::parse_risk_rules(text) : Result<core::RiskRules>(Code::unavailable, "cannot read it");
  if (!parsed.ok()) {
    reloads_failed_.Increment();
    return Status(parsed.error());
  }
  auto rules = std::make_shared<const core::RiskRules>(std::move(parsed.value()));
  const size_t count = rules->rules.size();
  auto single = std::make_shared<core::RiskCheck>();
  single->rules = rules;
  single->review_holds = true;
  single->review_hold_expiry_s = review_hold_expiry_s_;
  auto other = std::make_shared<core::RiskCheck>();
  other->rules = rules;
  {
    MutexLock lock(mutex_);
    single_ = std::move(single);
    other_ = std::move(other);
  }
  reloads_ok_.Increment();
  rules_gauge_.Set(static_cast<double>(count));
  observe::log(observe::LogLevel::info, "risk rules in force",
               {{"file.path", path_}, {"rules", std::to_string(count)}});
  return {};
}

std::shared_ptr<const core::RiskCheck> RiskRulesFile::check(bool single) const {
  MutexLock lock(mutex_);
  return single ? single_ : other_;
}

}  // namespace balanced::api
