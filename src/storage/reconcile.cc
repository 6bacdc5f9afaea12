#include "storage/reconcile.h"

namespace balanced::storage {

namespace {

class VerifyVisitor final : public ScanVisitor {
 public:
  void account(const core::Account& a) override { verifier.add_account(a); }
  void reference_claim(const core::ReferenceClaim& c) override { verifier.add_reference_claim(c); }
  void transaction(const core::Transaction& t) override { verifier.add_transaction(t); }
  void audit(const core::AuditRecord& r) override { verifier.add_audit(r); }
  void audit_incomplete(int64_t) override { verifier.set_audit_incomplete(); }
  core::Verifier verifier;
};

}  // namespace

Result<core::VerifyReport> reconcile(Store& store) {
  VerifyVisitor visitor;
  if (auto status = store.scan(visitor); !status.ok()) return status.error();
  return visitor.verifier.finish();
}

}  // namespace balanced::storage
