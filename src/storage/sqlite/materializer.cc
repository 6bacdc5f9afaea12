#include "storage/sqlite/materializer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "observe/log.h"

namespace balanced::storage::sqlite {

void Materializer::start(Overlay& overlay, LedgerWriter& ledger, CommitLog& log,
                         MaterializerOptions options) {
  thread_ = std::thread([this, &overlay, &ledger, &log, options] {
    observe::name_this_thread("materialize");
    run(overlay, ledger, log, options);
  });
}

void Materializer::join() {
  if (thread_.joinable()) thread_.join();
}

void Materializer::run(Overlay& overlay, LedgerWriter& ledger, CommitLog& log,
                       MaterializerOptions options) {
  // Below the committer and the HTTP workers: its big chunks must not push requests'
  // latency up. It still gets its share; when it falls behind, backpressure bounds it.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options.nice);
  for (;;) {
    PendingChunk chunk = overlay.next_chunk(options.interval, options.chunk_transactions_max);
    if (chunk.empty()) return;
    std::vector<std::pair<int64_t, const core::BatchEffects*>> view;
    for (const auto& batch : chunk) view.emplace_back(batch->batch, &batch->effects);
    if (Status status = ledger.materialize(view); !status.ok()) {
      overlay.set_error(status.detail());
      observe::log(observe::LogLevel::error, "materializer failed, retrying",
                   {{"error.message", status.detail()}});
      std::this_thread::sleep_for(options.retry_after);
      continue;
    }
    // The chunk is in the ledger file now, so its overlay entries may go at any pace.
    overlay.forget(chunk);
    // The chunk's batches are in the ledger file (committed durably as the log's
    // records were): the log segments that hold only them can go.
    if (Status released = log.release_through(chunk.back()->batch); !released.ok()) {
      observe::log(observe::LogLevel::error, "cannot release commit log segments",
                   {{"error.message", released.detail()}});
    }
    chunk.clear();  // the batches' memory is freed here, outside the lock
  }
}

}  // namespace balanced::storage::sqlite
