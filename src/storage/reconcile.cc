#include "storage/reconcile.h"

namespace balanced::storage {

namespace {

class VerifyVisitor final : public ScanVisitor {
 public:
  void account(const core::Account& a) override { verifier.add_account(a); }
  void reference_claim(const core::ReferenceClaim& c) override { verifier.add_reference_claim(c); }
  VerifyVisitor() { verifier.check_reports(); }
  void transaction(const core::Transaction& t) override { verifier.add_transaction(t); }
  void daily_total(const core::DailyKey& k, const core::DailyTotal& t) override { verifier.add_daily_total(k, t); }
  void volume(const core::VolumeKey& k, const core::Volume& v) override { verifier.add_volume(k, v); }
  void event_span(int64_t oldest, int64_t newest, int64_t count, std::optional<int64_t> counter) override {
    verifier.add_event_span(oldest, newest, count, counter);
  }
  void unreadable_event(int64_t id, const std::string& detail) override { verifier.add_unreadable_event(id, detail); }
  void audit(const core::AuditRecord& r) override { verifier.add_audit(r); }
  void audit_incomplete(int64_t) override { verifier.set_audit_incomplete(); }
  void keeps_hold_keys() override { verifier.check_hold_keys(); }
  void hold_key(const core::HoldKey& key) override { verifier.add_hold_key(key); }
  core::Verifier verifier;
};

}  // namespace

Result<core::VerifyReport> reconcile(Store& store) {
  VerifyVisitor visitor;
  if (auto status = store.scan(visitor); !status.ok()) return status.error();
  return visitor.verifier.finish();
}

}  // namespace balanced::storage
