// Batch application: the heart of the ledger, and pure.
//
// A store opens one database transaction, loads the accounts and earlier transactions
// that a batch names (required_accounts(), transaction_ids()), calls apply_batch(), writes
// its effects and commits once. apply_batch() applies the operations in order, so the
// outcome of each depends on the ones before it, exactly as if they had been committed
// one by one.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/risk.h"
#include "core/string_map.h"
#include "core/types.h"

namespace balanced::core {

// What the store loaded, inside its database transaction, for one batch.
struct LedgerState {
  // The accounts among required_accounts() that exist. apply_batch() changes them and
  // adds the accounts it creates. Hashed, by open addressing: a batch looks each party up
  // several times (a tree of strings made that a sixth of the committer's work). An
  // account moves when one is added: no reference into it outlives an insert.
  FlatStringMap<Account> accounts;
  // The earlier transactions whose ids are among transaction_ids().
  std::unordered_map<std::string, Transaction> existing;
  // Among reference_keys(), those committed before: key -> the transaction's id.
  std::unordered_map<std::string, std::string> reference_owners;
  // Among velocity_sources(), each account's committed debits in the risk windows ending
  // at the commit (core::counts_as_debit). apply_batch() adds the batch's own.
  std::unordered_map<std::string, Velocity> velocity;
};

// A reference taken by a committed deposit or withdrawal under --unique-references.
struct ReferenceClaim {
  std::string key;  // reference_key(currency, reference)
  std::string transaction_id;
};

// Everything a batch writes. Sequences and log ids are left 0 for the store to assign.
struct BatchEffects {
  std::vector<Outcome> outcomes;          // one per operation, in order
  std::vector<Transaction> transactions;  // new rows, in commit order
  // For each outcome, the index of its new row in `transactions`, or -1.
  std::vector<int> outcome_transaction;
  std::vector<Account> created;  // accounts to insert (final state)
  std::vector<Account> updated;  // earlier accounts that changed (final state)
  // Earlier transactions whose state changed (a hold ended, a transfer refunded): the
  // whole row in its final state; only the state fields (rows.h) differ from the stored.
  std::vector<Transaction> transaction_updates;
  // References this batch's deposits and withdrawals took (--unique-references).
  std::vector<ReferenceClaim> reference_claims;
  // One record per account created and per transaction recorded, not yet sealed: a
  // transfer's detail is rendered, and every record chained, by seal_audit(), which the
  // store calls when it writes the audit log (off the commit path, in commit order).
  std::vector<AuditRecord> audit;
  // The change feed's events, in commit order: ids 0 and bodies empty until the store
  // assigns ids (and sequences) and calls render_audit_and_events().
  std::vector<Event> events;
  // The id the store gave the batch's last event; 0 when it made none.
  int64_t last_event_id = 0;
};

// Account numbers the batch reads or writes, sorted and unique: the order in which a
// store must lock them so that concurrent batches cannot deadlock.
std::vector<std::string> required_accounts(std::span<const Operation> operations);
// The same once the stored rows the batch refers to (referenced_transactions()) are in
// `loaded`: a capture, void, expire or refund also names the parties of its hold or
// original.
std::vector<std::string> required_accounts(std::span<const Operation> operations, const LedgerState& loaded);
// The stored transaction an operation refers to (a hold's, a refund's original), or "".
const std::string& referenced_id(const Operation& operation);
// Those ids, sorted and unique. Their rows' state may change under a concurrent batch
// until the accounts they name are locked: a multi-writer store loads them again then.
std::vector<std::string> referenced_transactions(std::span<const Operation> operations);
// Transaction ids the batch may collide with (client and deposit ids) or refers to (holds,
// refunds' originals), sorted and unique.
std::vector<std::string> transaction_ids(std::span<const Operation> operations);
// The reference keys of the batch's deposits and withdrawals under --unique-references,
// sorted and unique.
std::vector<std::string> reference_keys(std::span<const Operation> operations);
// The accounts whose recent debits the risk rules of the batch's operations look at
// (RiskRules::counts_velocity), sorted and unique, once the rows referenced_transactions()
// names are in `loaded` (a refund's source is its original's destination). Empty for a
// batch no rule with a velocity condition decides: nothing more is read.
std::vector<std::string> velocity_sources(std::span<const Operation> operations, const LedgerState& loaded);

// The id of the deposit that opens an account with an initial balance. It starts with
// '$' so no client id can take it.
std::string deposit_transaction_id(std::string_view account_number);

BatchEffects apply_batch(std::span<const Operation> operations, LedgerState& state,
                         int64_t now_ms);

// Copies the sequences the store assigned to effects.transactions into the outcomes.
void attach_sequences(BatchEffects& effects);

// An event's type: "account.created", "account.updated", "transaction.<type>".
std::string event_type(const Event& event, const std::vector<Transaction>& transactions);

// Renders a batch's pending audit details and its events' bodies (Event::body), each
// row's JSON once for both (the audit detail of a transaction is that JSON). REQUIRES:
// transaction sequences assigned.
void render_audit_and_events(std::vector<AuditRecord>& audit, std::vector<Event>& events,
                             const std::vector<Transaction>& transactions);

// The events as a store keeps them. REQUIRES: rendered.
std::vector<StoredEvent> stored_events(const BatchEffects& effects);

// Renders the pending details of `audit` from `transactions` (sequences assigned).
void render_audit_details(std::vector<AuditRecord>& audit,
                          const std::vector<Transaction>& transactions);

// Renders the pending details of `audit` from `transactions` (sequences assigned) and
// chains every record from `head` (genesis_hash() for an empty log); returns the new head.
// REQUIRES: batches are sealed in commit order.
std::string seal_audit(std::vector<AuditRecord>& audit,
                       const std::vector<Transaction>& transactions, std::string head);

}  // namespace balanced::core
