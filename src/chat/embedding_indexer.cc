#include "chat/embedding_indexer.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "base/utf8.h"

namespace locrit {

std::string EmbeddingInput(std::string_view text, size_t max_chars) {
  return std::string(Utf8Prefix(text, max_chars));
}

// One batch of a lane, from taking its ids to storing their vectors. Owned by the callbacks
// that carry it; the lane's `running` flag says a pass is alive.
struct EmbeddingIndexer::Pass {
  std::string slug;
  size_t batch_limit = 0;          // Texts per request in this pass.
  std::set<std::string> skipped;   // The lane's skipped keys when the pass started.
  std::vector<NodeType> types;     // The batch in flight: what each id is...
  std::vector<std::string> ids;    // ...and the ids.
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
  std::vector<NodeType> types;
  std::vector<std::string> ids;
  std::vector<std::string> texts;
};

// How a refused text is remembered: "message <id>" or "memory <id>".
std::string ItemKey(NodeType type, const std::string& id) {
  return std::string(NodeTypeName(type)) + " " + id;
}

// Up to `limit` ids from `missing` (oldest first) that are not skipped.
void TakeUnskipped(NodeType type, std::vector<std::string> missing,
                   const std::set<std::string>& skipped, size_t limit,
                   std::vector<std::pair<NodeType, std::string>>& out) {
  for (std::string& id : missing) {
    if (out.size() >= limit) return;
    if (skipped.count(ItemKey(type, id)) == 0) out.emplace_back(type, std::move(id));
  }
}

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

void EmbeddingIndexer::RequestBackfill(const EmbeddingTarget& target) {
  bool start = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    Lane& lane = lanes_[target.slug];
    lane.target = target;
    lane.stats.backfill_pending = true;
    ++lane.backfill_epoch;
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
    pass->batch_limit = lane.one_at_a_time ? 1 : static_cast<size_t>(options_.batch_size);
    pass->skipped = lane.skipped;
    if (!stopping_ && !lane.queue.empty()) {
      const size_t n = std::min(lane.queue.size(), pass->batch_limit);
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
    const size_t limit = pass->batch_limit;
    const size_t max_chars = options_.max_input_chars;
    const bool from_backfill = pass->from_backfill;
    pass->memory->Read<Batch>(
        [=](MemoryStore& store) -> Result<Batch> {
          std::vector<std::pair<NodeType, std::string>> wanted;
          if (from_backfill) {
            // Skipped texts are still missing: read past them.
            const int extra = static_cast<int>(limit + pass->skipped.size());
            ASSIGN_OR_RETURN(std::vector<std::string> messages,
                             store.MessagesMissingEmbedding(model, extra));
            TakeUnskipped(NodeType::kMessage, std::move(messages), pass->skipped, limit, wanted);
            if (wanted.size() < limit) {
              ASSIGN_OR_RETURN(std::vector<std::string> memories,
                               store.MemoriesMissingEmbedding(model, extra));
              TakeUnskipped(NodeType::kMemory, std::move(memories), pass->skipped, limit, wanted);
            }
          } else {
            for (const std::string& id : ids) wanted.emplace_back(NodeType::kMessage, id);
          }
          Batch batch;
          batch.read = wanted.size();
          for (auto& [type, id] : wanted) {
            std::string content;
            if (type == NodeType::kMessage) {
              Result<Message> message = store.GetMessage(id);
              // Deleted since (retention, an operator): nothing to embed.
              if (message.status().code() == StatusCode::kNotFound) continue;
              if (!message.ok()) return message.status();
              content = std::move(message->content);
            } else {
              Result<Memory> memory = store.GetMemory(id);
              if (memory.status().code() == StatusCode::kNotFound) continue;
              if (!memory.ok()) return memory.status();
              content = std::move(memory->content);
            }
            batch.texts.push_back(EmbeddingInput(content, max_chars));
            batch.types.push_back(type);
            batch.ids.push_back(std::move(id));
          }
          return batch;
        },
        [this, pass, limit](Result<Batch> batch) {
          if (!batch.ok()) return Fail(pass, batch.status());
          if (pass->from_backfill && batch->read < limit) pass->backfill_complete = true;
          pass->types = std::move(batch->types);
          pass->ids = std::move(batch->ids);
          Embed(pass, std::move(batch->texts));
        });
  });
}

void EmbeddingIndexer::Embed(const std::shared_ptr<Pass>& pass, std::vector<std::string> texts) {
  if (texts.empty()) return Advance(pass, 0);
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
      std::move(request), [this, pass, id](Result<Embeddings> embeddings) {
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
        if (!embeddings.ok()) {
          // An upstream 4xx: the server refuses these texts (5xx and the rest are transient).
          const bool refused = embeddings.status().code() == StatusCode::kInvalidArgument;
          return Fail(pass, embeddings.status(), refused);
        }
        if (embeddings->vectors.size() != pass->ids.size()) {
          return Fail(pass,
                      LlmError(fmt::format("the embedding server gave {} vectors for {} texts",
                                           embeddings->vectors.size(), pass->ids.size())),
                      /*refused=*/true);
        }
        Store(pass, std::move(embeddings->vectors));
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

void EmbeddingIndexer::Store(const std::shared_ptr<Pass>& pass,
                             std::vector<std::vector<float>> vectors) {
  struct Stored {
    int64_t stored = 0;
    int64_t refused = 0;  // Vectors the store refused (empty, not finite, too long).
  };
  const std::string model = pass->target.llm.embedding_model;
  pass->memory->Write<Stored>(
      [types = pass->types, ids = pass->ids, vectors = std::move(vectors),
       model](MemoryStore& store) -> Result<Stored> {
        Stored out;
        for (size_t i = 0; i < ids.size(); ++i) {
          Status set = store.SetEmbedding(types[i], ids[i], model, vectors[i]);
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
          return Fail(pass, LlmError("the embedding server gave vectors the store refuses"),
                      /*refused=*/true);
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
      lane.one_at_a_time = false;  // Whatever was refused is embedded or skipped now.
    }
  }
  Step(pass->slug);
}

void EmbeddingIndexer::Fail(const std::shared_ptr<Pass>& pass, const Status& error,
                            bool refused) {
  pass->memory.reset();
  pass->client.reset();
  bool skipped_one = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Lane& lane = lanes_.at(pass->slug);
    lane.stats.running = false;
    if (!stopping_) {
      ++lane.stats.failed_batches;
      lane.stats.last_error = error.ToString();
      lane.stats.backfill_pending = true;  // The dropped batch is found again.
      ++lane.backfill_epoch;
      if (refused && pass->ids.size() > 1) {
        lane.one_at_a_time = true;  // Find which text it is.
      } else if (refused && pass->ids.size() == 1) {
        const std::string key = ItemKey(pass->types[0], pass->ids[0]);
        lane.refusals = key == lane.refused_key ? lane.refusals + 1 : 1;
        lane.refused_key = key;
        if (lane.refusals >= options_.max_refusals && lane.skipped.size() < options_.max_skipped) {
          lane.skipped.insert(key);
          ++lane.stats.skipped;
          lane.stats.last_skipped = key + ": " + error.ToString();
          lane.refused_key.clear();
          lane.refusals = 0;
          skipped_one = true;
        }
      }
      if (skipped_one) {
        // Moving on to the next text needs no wait.
        lane.stats.retry_at = 0;
        skipped_one = ClaimLocked(lane);
      } else {
        lane.backoff_ms = lane.backoff_ms == 0
                              ? options_.initial_backoff_ms
                              : std::min(2 * lane.backoff_ms, options_.max_backoff_ms);
        lane.stats.retry_at = options_.clock->NowMillis() + lane.backoff_ms;
      }
    }
    idle_.notify_all();
  }
  if (skipped_one) Step(pass->slug);
}

void EmbeddingIndexer::End(const std::shared_ptr<Pass>& pass) {
  pass->memory.reset();
  pass->client.reset();
  std::lock_guard<std::mutex> lock(mu_);
  lanes_.at(pass->slug).stats.running = false;
  idle_.notify_all();
}

}  // namespace locrit
