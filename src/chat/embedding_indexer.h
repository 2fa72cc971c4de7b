// EmbeddingIndexer: computes the vectors of a Locrit's messages in the background, after the
// replies, so that hybrid retrieval can find them by meaning. It never takes part in a turn.
//
// One lane per Locrit, each running at most one pass at a time. A pass takes a batch of message
// ids — the queued ones first, else (backfill) the oldest messages without a vector from the
// Locrit's embedding model (MemoryStore::MessagesMissingEmbedding) — reads their text on a
// reader, asks the embedding server for the batch in one request, and stores the vectors in one
// write; then the next batch, until the queue is empty and nothing is missing.
//
// Memories (standalone) are embedded by the backfill too: it takes the oldest messages without a
// vector, then the memories without one (MemoriesMissingEmbedding). RequestBackfill() starts it
// when memories were added outside a turn.
//
// A text the embedding server keeps refusing (an upstream 4xx, or vectors the store refuses)
// must not hold back the messages behind it forever: after a refused batch the lane sends one
// text per request until its backfill completes, and a text refused max_refusals times in a row
// is skipped for the life of the process (Stats: skipped, last_skipped). A restart tries it again.
// A server that is down, slow or failing with 5xx is not a refusal: nothing is skipped for that.
//
// Durability: the queue lives in memory only; the store is the source of truth. A lane starts
// with a backfill the first time it sees a Locrit (so after a restart, on the Locrit's first
// turn), so nothing queued and lost — by a restart, a full queue or a failed batch — stays
// unembedded.
//
// Failures (embedding server down, slow or answering nonsense; storage errors) never reach a
// chat turn: the batch is dropped, the lane waits with a doubling backoff (initial_backoff_ms up
// to max_backoff_ms, on the injected clock) and then backfills. A retry starts on the Locrit's
// next Enqueue after the backoff, or from RetryDue(), which the server calls from a timer. The
// queue holds at most max_queued ids per Locrit; more are dropped and left to the backfill, so a
// dead embedding server cannot grow memory.
//
// Thread-safe. Callbacks of the memory manager and the LLM client drive the passes; no lock is
// held across a call into either. REQUIRES: Shutdown() (or destruction) before the memory
// manager and the LLM runtime are shut down.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "llm/llm_client.h"
#include "llm/llm_runtime.h"
#include "llm/llm_settings.h"
#include "memory/memory_manager.h"

namespace locrit {

struct EmbeddingIndexerOptions {
  MemoryManager* memory = nullptr;  // Required; outlives the indexer.
  LlmRuntime* llm = nullptr;        // Required; outlives the indexer.
  const Clock* clock = nullptr;     // Required: the backoff runs on it.
  size_t max_queued = 1024;         // Message ids waiting per Locrit; more are left to backfill.
  int batch_size = 32;              // Texts per embedding request (and per backfill read).
  size_t max_input_chars = 4000;    // A longer message is embedded by its beginning.
  int64_t initial_backoff_ms = 1'000;
  int64_t max_backoff_ms = 5 * 60 * 1'000;
  int max_refusals = 3;           // Refusals of one text in a row before it is skipped.
  size_t max_skipped = 256;       // Skipped texts remembered per Locrit.
};

// The Locrit whose messages are embedded.
struct EmbeddingTarget {
  std::string slug;
  LlmSettings llm;  // REQUIRES: llm.embedding_model is not empty.
  int64_t max_messages = 5000;  // Its retention (for opening its memory).
};

// A lane's state, for tests, metrics and the health page.
struct EmbeddingLaneStats {
  size_t queued = 0;
  bool running = false;          // A pass is in flight.
  bool backfill_pending = false; // Some messages may lack a vector.
  int64_t embedded = 0;          // Vectors stored.
  int64_t dropped = 0;           // Ids not queued because the queue was full.
  int64_t failed_batches = 0;
  int64_t retry_at = 0;          // Unix millis before which no pass starts; 0: none.
  std::string last_error;
  int64_t skipped = 0;           // Texts skipped after max_refusals refusals in a row.
  std::string last_skipped;      // "<type> <id>: <why>" of the latest one.
};

// The text sent to the embedding model for `text`: its first max_chars characters (whole code
// points). Used for stored messages and for a turn's question alike.
std::string EmbeddingInput(std::string_view text, size_t max_chars);

class EmbeddingIndexer {
 public:
  explicit EmbeddingIndexer(EmbeddingIndexerOptions options);
  ~EmbeddingIndexer();  // Shutdown().
  EmbeddingIndexer(const EmbeddingIndexer&) = delete;
  EmbeddingIndexer& operator=(const EmbeddingIndexer&) = delete;

  // Queues messages just saved (a turn's question and reply) and starts a pass unless one is
  // running or the lane is backing off. The first call for a Locrit (or after its embedding
  // model changed) also schedules a backfill; an empty `message_ids` does only that. Never
  // blocks on I/O.
  void Enqueue(const EmbeddingTarget& target, std::vector<std::string> message_ids);

  // Schedules a backfill (messages and memories missing a vector) and starts it unless a pass is
  // running or the lane is backing off. Never blocks on I/O.
  void RequestBackfill(const EmbeddingTarget& target);

  // Starts a pass on every lane whose backoff is over and that has work.
  void RetryDue();

  // Cancels embedding requests in flight, waits for running passes to end; later calls do
  // nothing. Idempotent. REQUIRES: not called from a memory-manager or LLM callback.
  void Shutdown();

  std::optional<EmbeddingLaneStats> Stats(const std::string& slug) const;
  const EmbeddingIndexerOptions& options() const { return options_; }

 private:
  struct Lane {
    EmbeddingTarget target;
    std::deque<std::string> queue;
    EmbeddingLaneStats stats;
    int64_t backoff_ms = 0;
    // Bumped whenever some message may have been left unembedded (first sight, a drop, a failed
    // batch): a backfill that completes clears backfill_pending only if it is unchanged.
    uint64_t backfill_epoch = 0;
    uint64_t call_id = 0;  // The request in flight (0: none); `call` is its handle.
    LlmCall call;
    // Refusals: after one, batches of a single text; the text refused `refusals` times in a row.
    bool one_at_a_time = false;
    std::string refused_key;
    int refusals = 0;
    std::set<std::string> skipped;  // "<type> <id>" keys, at most max_skipped.
  };
  struct Pass;

  // REQUIRES mu_ held. Marks the lane running if it may start a pass now.
  bool ClaimLocked(Lane& lane);
  void Step(const std::string& slug);
  // The pass's batch (pass->types, pass->ids) has these texts.
  void Embed(const std::shared_ptr<Pass>& pass, std::vector<std::string> texts);
  void Store(const std::shared_ptr<Pass>& pass, std::vector<std::vector<float>> vectors);
  // The batch is done (`stored` vectors): on to the next one.
  void Advance(const std::shared_ptr<Pass>& pass, int64_t stored);
  // Ends the pass with an error: drop the batch, back off, backfill later. `refused`: the server
  // or the store rejected the texts themselves (see the class comment), not a transient failure.
  void Fail(const std::shared_ptr<Pass>& pass, const Status& error, bool refused = false);
  // Ends the pass (stopping, or nothing left).
  void End(const std::shared_ptr<Pass>& pass);

  const EmbeddingIndexerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::map<std::string, Lane> lanes_;  // GUARDED_BY(mu_); one per Locrit seen, never erased.
  bool stopping_ = false;              // GUARDED_BY(mu_)
  uint64_t next_call_id_ = 0;          // GUARDED_BY(mu_)
  int registering_ = 0;                // GUARDED_BY(mu_): Embed() calls not yet registered.
};

}  // namespace locrit
