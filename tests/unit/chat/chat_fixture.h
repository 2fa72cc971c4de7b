// ChatFixture: ChatService over real parts, for the chat tests — a MemoryManager on a temporary
// directory (real SQLite files), an EmbeddingIndexer, and an LlmRuntime talking HTTP to the
// scripted fake LLM server on 127.0.0.1. Restart() replaces the manager, the indexer and the
// service by new ones on the same data directory, as a process restart would.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/thread_pool.h"
#include "chat/chat_service.h"
#include "chat/embedding_indexer.h"
#include "tests/support/await.h"
#include "tests/support/fake_clock.h"
#include "tests/support/fake_llm_server.h"
#include "tests/support/matchers.h"
#include "tests/support/raw_sql.h"
#include "tests/support/temp_dir.h"

namespace locrit::testing {

struct TurnOutcome {
  Status status;
  TurnResult result;
  std::vector<std::string> deltas;
};

class ChatFixture : public ::testing::Test {
 protected:
  ChatFixture() { Start(); }

  ~ChatFixture() override {
    Stop();
    runtime_.Shutdown();
  }

  // A new memory manager, indexer and service on the same data directory.
  void Restart(EmbeddingIndexerOptions indexer = {}) {
    Stop();
    Start(indexer);
  }

  void Start(EmbeddingIndexerOptions indexer = {}) {
    MemoryManagerOptions memory;
    memory.data_dir = dir_.path().string();
    memory.clock = &clock_;
    memory.ids = &ids_;
    memory.pool = &pool_;
    manager_ = std::make_unique<MemoryManager>(memory);
    indexer.memory = manager_.get();
    indexer.llm = &runtime_;
    indexer.clock = &clock_;
    indexer_ = std::make_unique<EmbeddingIndexer>(indexer);
    ChatServiceOptions options;
    options.memory = manager_.get();
    options.llm = &runtime_;
    options.ids = &ids_;
    options.clock = &clock_;
    options.max_message_chars = 100;
    options.indexer = indexer_.get();
    options.query_vector_timeout = query_vector_timeout_;
    chat_ = std::make_unique<ChatService>(options);
  }

  void Stop() {
    indexer_->Shutdown();
    chat_.reset();
    manager_->Shutdown();
    indexer_.reset();
    manager_.reset();
  }

  ChatLocrit WithModel() {
    ChatLocrit locrit = Recall();
    LlmSettings llm;
    llm.provider = LlmProvider::kOllama;
    llm.base_url = server_.url();
    llm.model = "llama3.2";
    llm.timeouts.first_token = std::chrono::milliseconds(5'000);
    llm.timeouts.idle = std::chrono::milliseconds(5'000);
    llm.retry.max_retries = 0;
    locrit.llm = llm;
    return locrit;
  }

  static ChatLocrit Recall() {
    ChatLocrit locrit;
    locrit.slug = "bob";
    locrit.name = "Bob Technique";
    locrit.description = "Un expert technique.";
    return locrit;
  }

  TurnOutcome Turn(const ChatLocrit& locrit, TurnRequest request) {
    auto deltas = std::make_shared<std::vector<std::string>>();
    auto mu = std::make_shared<std::mutex>();
    std::promise<TurnOutcome> promise;
    auto future = promise.get_future();
    auto handle = chat_->Turn(
        locrit, std::move(request),
        [deltas, mu](std::string_view d) {
          std::lock_guard<std::mutex> lock(*mu);
          deltas->emplace_back(d);
        },
        [&promise, deltas, mu](Status status, TurnResult result) {
          std::lock_guard<std::mutex> lock(*mu);
          promise.set_value({std::move(status), std::move(result), *deltas});
        });
    return future.get();
  }

  static TurnRequest Request(std::string message, std::string session = "") {
    TurnRequest request;
    request.message = std::move(message);
    request.session_id = std::move(session);
    request.user_id = "alice";
    return request;
  }

  template <typename T>
  Result<T> Read(std::function<Result<T>(MemoryStore&)> op) {
    auto memory = Await<MemoryManager::Handle>([&](auto done) { manager_->Get("bob", {}, done); });
    if (!memory.ok()) return memory.status();
    return Await<T>([&](auto done) { (*memory)->template Read<T>(op, done); });
  }

  Result<Message> GetMessage(const std::string& id) {
    return Read<Message>([id](MemoryStore& store) { return store.GetMessage(id); });
  }

  // The message that `id` responds to, read from the file by a connection of its own.
  std::string RespondsTo(const std::string& id) {
    RawSql sql((dir_.path() / "locrits" / "bob" / "memory.db").string());
    return sql.Text("SELECT to_id FROM responds_to WHERE from_id = '" + id + "'");
  }

  // The messages the model was sent in the last chat request.
  std::vector<std::pair<std::string, std::string>> SentContext() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& request : server_.Requests()) {
      if (request.target != "/api/chat") continue;
      out.clear();
      const auto body = boost::json::parse(request.body).as_object();
      for (const auto& m : body.at("messages").as_array()) {
        out.emplace_back(std::string(m.at("role").as_string()),
                         std::string(m.at("content").as_string()));
      }
    }
    return out;
  }

  // The fake server answers at once; a generous bound keeps a loaded test machine from falling
  // back to bm25 where a test wants the question's vector. Read by Start().
  std::chrono::milliseconds query_vector_timeout_{10'000};
  TempDir dir_;
  FakeClock clock_;
  IdGenerator ids_{&clock_, 7};
  ThreadPool pool_{4};
  LlmRuntime runtime_;
  FakeLlmServer server_;
  std::unique_ptr<MemoryManager> manager_;
  std::unique_ptr<EmbeddingIndexer> indexer_;
  std::unique_ptr<ChatService> chat_;
};

}  // namespace locrit::testing
