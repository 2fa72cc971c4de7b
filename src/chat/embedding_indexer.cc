#include "chat/embedding_indexer.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace locrit {

std::string EmbeddingInput(std::string_view text, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    // A byte that does not continue a sequence starts a code point.
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && chars++ == max_chars) {
      return std::string(text.substr(0, i));
    }
  }
  return std::string(text);
}

// One batch of a lane, from taking its ids to storing their vectors. Owned by the callbacks
// that carry it; the lane's `running` flag says a pass is alive.
struct EmbeddingIndexer::Pass {
  std::string slug;
  EmbeddingTarget target;
  bool from_backfill = false;
  uint64_t backfill_epoch = 0;     // The lane's epoch when the backfill batch was taken.
  bool backfill_complete = false;  // The backfill read found fewer than a batch.
  MemoryManager::Handle memory;
  std::shared_ptr<LlmClient> client;
};

namespace {

// What a pass reads for a batch: the ids still present and their texts.
struct Batch {
  size_t read = 0;  // Ids considered (backfill: found missing).
  std::vector<std::string> ids;
  std::vector<std::string> texts;
};

}  // namespace

EmbeddingIndexer::EmbeddingIndexer(EmbeddingIndexerOptions options) : options_(options) {}

EmbeddingIndexer::~EmbeddingIndexer() { Shutdown(); }

bool EmbeddingIndexer::ClaimLocked(Lane& lane) {
  if (stopping_ || lane.stats.running) return false;
  if (lane.stats.retry_at != 0 && options_.clock->NowMillis() < lane.stats.retry_at) return false;
  if (lane.queue.empty() && !lane.stats.backfill_pending) return false;
  lane.stats.running = true;
  lane.stats.retry_at = 0;
  return true;
}

void EmbeddingIndexer::Enqueue(const EmbeddingTarget& target,
                               std::vector<std::string> message_ids) {
  bool start = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    auto [it, inserted] = lanes_.try_emplace(target.slug);
    Lane& lane = it->second;
    if (inserted || lane.target.llm.embedding_model != target.llm.embedding_model) {
      lane.stats.backfill_pending = true;
      ++lane.backfill_epoch;
    }
    lane.target = target;
    for (std::string& id : message_ids) {
      if (lane.queue.size() >= options_.max_queued) {
        ++lane.stats.dropped;
        lane.stats.backfill_pending = true;  // The backfill finds it.
        ++lane.backfill_epoch;
        continue;
      }
      lane.queue.push_back(std::move(id));
    }
    lane.stats.queued = lane.queue.size();
    start = ClaimLocked(lane);
  }
  if (start) Step(target.slug);
}

void EmbeddingIndexer::RetryDue() {
  std::vector<std::string> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [slug, lane] : lanes_) {
      if (ClaimLocked(lane)) due.push_back(slug);
    }
  }
  for (const std::string& slug : due) Step(slug);
}

void EmbeddingIndexer::Shutdown() {
  std::vector<LlmCall> calls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [slug, lane] : lanes_) {
      lane.call_id = 0;
      calls.push_back(std::move(lane.call));
    }
  }
  calls.clear();  // Cancels them: their passes end with `cancelled`.
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] {
    if (registering_ > 0) return false;
    return std::none_of(lanes_.begin(), lanes_.end(),
                        [](const auto& entry) { return entry.second.stats.running; });
  });
}

std::optional<EmbeddingLaneStats> EmbeddingIndexer::Stats(const std::string& slug) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = lanes_.find(slug);
  if (it == lanes_.end()) return std::nullopt;
  return it->second.stats;
}

// REQUIRES: the lane is running and this pass owns it.
void EmbeddingIndexer::Step(const std::string& slug) {
  auto pass = std::make_shared<Pass>();
  pass->slug = slug;
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Lane& lane = lanes_.at(slug);
    pass->target = lane.target;
    if (!stopping_ && !lane.queue.empty()) {
      const size_t n = std::min(lane.queue.size(), static_cast<size_t>(options_.batch_size));
      ids.assign(std::make_move_iterator(lane.queue.begin()),
                 std::make_move_iterator(lane.queue.begin() + static_cast<ptrdiff_t>(n)));
      lane.queue.erase(lane.queue.begin(), lane.queue.begin() + static_cast<ptrdiff_t>(n));
      lane.stats.queued = lane.queue.size();
    } else if (!stopping_ && lane.stats.backfill_pending) {
      pass->from_backfill = true;
      pass->backfill_epoch = lane.backfill_epoch;
    }
  }
  if (ids.empty() && !pass->from_backfill) return End(pass);

  LocritMemoryOptions memory_options;
  memory_options.max_messages = pass->target.max_messages;
  options_.memory->Get(slug, memory_options, [this, pass, ids](Result<MemoryManager::Handle> got) {
    if (!got.ok()) return Fail(pass, got.status());
    pass->memory = std::move(got).value();
    const std::string model = pass->target.llm.embedding_model;
    const int batch_size = options_.batch_size;
    const size_t max_chars = options_.max_input_chars;
    const bool from_backfill = pass->from_backfill;
    pass->memory->Read<Batch>(
        [=](MemoryStore& store) -> Result<Batch> {
          std::vector<std::string> wanted = ids;
          if (from_backfill) {
            ASSIGN_OR_RETURN(wanted, store.MessagesMissingEmbedding(model, batch_size));
          }
          Batch batch;
          batch.read = wanted.size();
          for (std::string& id : wanted) {
            Result<Message> message = store.GetMessage(id);
            // Deleted since (retention, an operator): nothing to embed.
            if (message.status().code() == StatusCode::kNotFound) continue;
            if (!message.ok()) return message.status();
            batch.texts.push_back(EmbeddingInput(message->content, max_chars));
            batch.ids.push_back(std::move(id));
          }
          return batch;
        },
        [this, pass, batch_size](Result<Batch> batch) {
          if (!batch.ok()) return Fail(pass, batch.status());
          if (pass->from_backfill && batch->read < static_cast<size_t>(batch_size)) {
            pass->backfill_complete = true;
          }
          Embed(pass, std::move(batch->ids), std::move(batch->texts));
        });
  });
}

void EmbeddingIndexer::Embed(const std::shared_ptr<Pass>& pass, std::vector<std::string> ids,
                             std::vector<std::string> texts) {
  if (ids.empty()) return Advance(pass, 0);
  auto client = options_.llm->NewClient(pass->target.llm);
  if (!client.ok()) return Fail(pass, client.status());
  pass->client = std::move(client).value();
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      id = ++next_call_id_;
      lanes_.at(pass->slug).call_id = id;
      ++registering_;  // Shutdown waits until this call is registered below.
    }
  }
  if (id == 0) return End(pass);  // Shutting down.
  EmbedRequest request;
  request.inputs = std::move(texts);
  request.model = pass->target.llm.embedding_model;
  LlmCall call = pass->client->Embed(
      std::move(request), [this, pass, ids = std::move(ids), id](Result<Embeddings> embeddings) {
        LlmCall finished;
        {
          std::lock_guard<std::mutex> lock(mu_);
          Lane& lane = lanes_.at(pass->slug);
          if (lane.call_id == id) {
            lane.call_id = 0;
            finished = std::move(lane.call);
          }
        }
        finished.Detach();
        if (!embeddings.ok()) return Fail(pass, embeddings.status());
        if (embeddings->vectors.size() != ids.size()) {
          return Fail(pass, LlmError(fmt::format("the embedding server gave {} vectors for {} texts",
                                                 embeddings->vectors.size(), ids.size())));
        }
        Store(pass, ids, std::move(embeddings->vectors));
      });
  LlmCall unwanted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Lane& lane = lanes_.at(pass->slug);
    if (!stopping_ && lane.call_id == id) {
      lane.call = std::move(call);
    } else {
      unwanted = std::move(call);  // Finished already, or shutting down: cancel it.
    }
    --registering_;
    idle_.notify_all();
  }
}

void EmbeddingIndexer::Store(const std::shared_ptr<Pass>& pass, std::vector<std::string> ids,
                             std::vector<std::vector<float>> vectors) {
  struct Stored {
    int64_t stored = 0;
    int64_t refused = 0;  // Vectors the store refused (empty, not finite, too long).
  };
  const std::string model = pass->target.llm.embedding_model;
  pass->memory->Write<Stored>(
      [ids = std::move(ids), vectors = std::move(vectors), model](MemoryStore& store)
          -> Result<Stored> {
        Stored out;
        for (size_t i = 0; i < ids.size(); ++i) {
          Status set = store.SetEmbedding(NodeType::kMessage, ids[i], model, vectors[i]);
          if (set.ok()) {
            ++out.stored;
          } else if (set.code() == StatusCode::kInvalidArgument) {
            ++out.refused;
          } else if (set.code() != StatusCode::kNotFound) {  // Not found: deleted since.
            return set;
          }
        }
        return out;
      },
      [this, pass](Result<Stored> stored) {
        if (!stored.ok()) return Fail(pass, stored.status());
        if (stored->refused > 0 && stored->stored == 0) {
          // Retrying at once would read the same batch again: back off instead.
          return Fail(pass, LlmError("the embedding server gave vectors the store refuses"));
        }
        Advance(pass, stored->stored);
      });
}

void EmbeddingIndexer::Advance(const std::shared_ptr<Pass>& pass, int64_t stored) {
  pass->memory.reset();
  pass->client.reset();
  {
    std::lock_guard<std::mutex> lock(mu_);
    Lane& lane = lanes_.at(pass->slug);
    lane.stats.embedded += stored;
    lane.backoff_ms = 0;
    if (pass->backfill_complete && lane.backfill_epoch == pass->backfill_epoch) {
      lane.stats.backfill_pending = false;
    }
  }
  Step(pass->slug);
}

void EmbeddingIndexer::Fail(const std::shared_ptr<Pass>& pass, const Status& error) {
  pass->memory.reset();
  pass->client.reset();
  std::lock_guard<std::mutex> lock(mu_);
  Lane& lane = lanes_.at(pass->slug);
  lane.stats.running = false;
  if (!stopping_) {
    ++lane.stats.failed_batches;
    lane.stats.last_error = error.ToString();
    lane.backoff_ms = lane.backoff_ms == 0
                          ? options_.initial_backoff_ms
                          : std::min(2 * lane.backoff_ms, options_.max_backoff_ms);
    lane.stats.retry_at = options_.clock->NowMillis() + lane.backoff_ms;
    lane.stats.backfill_pending = true;  // The dropped batch is found again.
    ++lane.backfill_epoch;
  }
  idle_.notify_all();
}

void EmbeddingIndexer::End(const std::shared_ptr<Pass>& pass) {
  pass->memory.reset();
  pass->client.reset();
  std::lock_guard<std::mutex> lock(mu_);
  lanes_.at(pass->slug).stats.running = false;
  idle_.notify_all();
}

}  // namespace locrit
