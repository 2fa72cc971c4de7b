#include "chat/chat_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <mutex>

#include "base/id_generator.h"
#include "base/utf8.h"
#include "chat/context.h"
#include "chat/query_embedding.h"
#include "chat/retrieval.h"

namespace locrit {
namespace {

constexpr std::string_view kRecallModel = "recall";
// Quoted items in a recall answer at most.
constexpr size_t kRecallQuotes = 5;

bool IsBlank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

// What a turn reads before calling the model.
struct TurnContext {
  std::vector<Message> window;
  std::vector<RecalledItem> recalled;
};

std::string ReplyMetadata(const ChatReply& reply) {
  boost::json::object meta;
  meta["model"] = reply.model;
  meta["latency_ms"] = reply.latency_ms;
  meta["first_token_ms"] = reply.first_token_ms;
  if (reply.prompt_tokens) meta["prompt_tokens"] = *reply.prompt_tokens;
  if (reply.completion_tokens) meta["completion_tokens"] = *reply.completion_tokens;
  if (!reply.finish_reason.empty()) meta["finish_reason"] = reply.finish_reason;
  return boost::json::serialize(meta);
}

}  // namespace

std::string ChatService::RecallAnswer(const ChatLocrit& locrit,
                                      const std::vector<RecalledItem>& recalled) {
  std::string answer = fmt::format(
      "Je suis {}. Aucun modèle de langage n'est configuré pour moi : je ne peux que vous dire ce "
      "que ma mémoire contient.",
      locrit.name);
  std::string quotes;
  size_t quoted = 0;
  for (const RecalledItem& item : recalled) {
    if (quoted == kRecallQuotes) break;
    // The Locrit's own replies are left out: without a model they are earlier recall answers,
    // and quoting them would only repeat this preamble.
    if (item.kind == RecalledItem::Kind::kMessage && item.role == Role::kAssistant) continue;
    quotes += fmt::format("\n- {} ({}) : « {} »", FormatUtcMinute(item.at),
                          item.kind == RecalledItem::Kind::kMemory ? "souvenir" : "message",
                          item.text);
    ++quoted;
  }
  if (quotes.empty()) return answer + "\nJe n'ai trouvé aucun souvenir lié à votre message.";
  return answer + "\nVoici ce qui s'en rapproche le plus :" + quotes;
}

class ChatService::TurnState : public TurnHandle,
                               public std::enable_shared_from_this<ChatService::TurnState> {
 public:
  TurnState(const ChatServiceOptions& options, ChatLocrit locrit, TurnRequest request,
            DeltaSink sink, Done done)
      : options_(options),
        locrit_(std::move(locrit)),
        request_(std::move(request)),
        sink_(std::move(sink)),
        done_(std::move(done)) {}

  void Start() {
    if (Status valid = Validate(); !valid.ok()) return Finish(valid);
    result_.session_id = request_.session_id.empty() ? UnguessableId() : request_.session_id;
    if (request_.user_id.empty()) request_.user_id = "anonymous";
    StartQueryVector();
    LocritMemoryOptions memory_options;
    memory_options.max_messages = locrit_.max_messages;
    auto self = shared_from_this();
    options_.memory->Get(locrit_.slug, memory_options, [self](Result<MemoryManager::Handle> got) {
      if (!got.ok()) return self->Finish(got.status());
      self->memory_ = std::move(got).value();
      self->SaveUserMessage();
    });
  }

  void Cancel() override {
    LlmCall call;
    LlmCall query_call;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      call = std::move(call_);
      query_call = std::move(query_call_);
    }
    call.Cancel();
    query_call.Cancel();
  }

 private:
  Status Validate() const {
    const std::string& text = request_.message;
    if (!IsValidUtf8(text)) return InvalidArgumentError("message is not valid UTF-8");
    if (text.empty() || IsBlank(text)) return InvalidArgumentError("message is empty");
    if (CountCodePoints(text) > options_.max_message_chars) {
      return InvalidArgumentError(fmt::format("message is longer than {} characters",
                                              options_.max_message_chars));
    }
    return Status::Ok();
  }

  void SaveUserMessage() {
    NewMessage message;
    message.session_id = result_.session_id;
    message.user_id = request_.user_id;
    message.user_name = request_.user_name;
    message.role = Role::kUser;
    message.content = request_.message;
    auto self = shared_from_this();
    memory_->Write<SavedMessage>(
        [message](MemoryStore& store) { return store.SaveMessage(message); },
        [self](Result<SavedMessage> saved) {
          if (!saved.ok()) return self->Finish(saved.status());
          self->result_.user_message_id = saved->id;
          self->user_seq_ = saved->seq;
          bool settled = false;
          {
            std::lock_guard<std::mutex> lock(self->mu_);
            self->saved_ = true;
            settled = self->query_settled_;
          }
          if (settled) self->ReadContext();
        });
  }

  // Embeds the question while it is being saved. The request's whole deadline is
  // query_vector_timeout and it is never retried, so the turn waits at most that long for it;
  // whatever happens, the turn goes on (bm25 alone without a vector).
  void StartQueryVector() {
    const std::optional<EmbeddingTarget> target = EmbeddingTargetOf(locrit_);
    if (!target || options_.llm == nullptr || options_.indexer == nullptr ||
        options_.query_vector_timeout.count() <= 0) {
      std::lock_guard<std::mutex> lock(mu_);
      query_settled_ = true;
      return;
    }
    auto self = shared_from_this();
    LlmCall call = EmbedQuery(
        *options_.llm, *target, request_.message, options_.indexer->options().max_input_chars,
        options_.query_vector_timeout, [self](Result<std::vector<float>> vector) {
          bool saved = false;
          {
            std::lock_guard<std::mutex> lock(self->mu_);
            if (vector.ok()) self->query_vector_ = std::move(*vector);
            self->query_settled_ = true;
            saved = self->saved_;
          }
          if (saved) self->ReadContext();
        });
    std::lock_guard<std::mutex> lock(mu_);
    query_call_ = std::move(call);
  }

  void ReadContext() {
    const std::string session = result_.session_id;
    const std::string user_message_id = result_.user_message_id;
    const int64_t user_seq = user_seq_;
    // The recall responder reads no window: everything it says comes from recall, which must
    // then be free to quote this session's own earlier messages.
    const int window = locrit_.llm ? std::max(0, locrit_.context_messages) : 0;
    const int recall_items = locrit_.recall_items;
    const std::string text = request_.message;
    std::vector<float> vector;
    {
      std::lock_guard<std::mutex> lock(mu_);
      vector = std::move(query_vector_);
    }
    const std::optional<EmbeddingTarget> target = EmbeddingTargetOf(locrit_);
    const std::string embedding_model = target ? target->llm.embedding_model : "";
    const double min_similarity = locrit_.recall_min_similarity;
    auto self = shared_from_this();
    memory_->Read<TurnContext>(
        [=](MemoryStore& store) -> Result<TurnContext> {
          TurnContext context;
          // One snapshot for the window and the recall: what one leaves out, the other holds.
          RETURN_IF_ERROR(store.ReadConsistently([&]() -> Status {
            if (window > 0) {
              // The newest messages before this turn's own: concurrent turns on the session may
              // have added some after it, which this reply does not answer.
              HistoryQuery history;
              history.session_id = session;
              history.limit = window;
              history.before_seq = user_seq;
              ASSIGN_OR_RETURN(context.window, store.History(history));
            }
            RecallQuery recall;
            recall.text = text;
            recall.session_id = session;
            recall.exclude_id = user_message_id;
            recall.limit = recall_items;
            recall.vector = vector;
            recall.embedding_model = embedding_model;
            recall.min_similarity = min_similarity;
            recall.window_first_seq =
                context.window.empty() ? user_seq : context.window.front().seq;
            ASSIGN_OR_RETURN(context.recalled, Recall(store, recall));
            return Status::Ok();
          }));
          return context;
        },
        [self](Result<TurnContext> context) {
          if (!context.ok()) return self->Fail(context.status());
          self->recalled_ = context->recalled;
          self->Reply(*context);
        });
  }

  void Reply(const TurnContext& context) {
    if (!locrit_.llm) return ReplyFromRecall();
    if (options_.llm == nullptr) return Fail(InternalError("no LLM runtime for a language model"));
    auto client = options_.llm->NewClient(*locrit_.llm);
    if (!client.ok()) return Fail(client.status());
    ContextInput input;
    input.locrit_name = locrit_.name;
    input.description = locrit_.description;
    input.system_prompt = locrit_.system_prompt;
    input.recalled = context.recalled;
    input.window = context.window;
    input.new_message_id = result_.user_message_id;
    input.new_message = request_.message;
    input.recall_budget_chars = locrit_.recall_budget_chars;
    ChatRequest chat;
    chat.messages = AssembleContext(input);
    auto self = shared_from_this();
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return Fail(CancelledError("the caller went away"));
    client_ = std::move(client).value();
    call_ = client_->Chat(
        std::move(chat), [self](std::string_view delta) { self->Deliver(delta); },
        [self](Result<ChatReply> reply) {
          if (!reply.ok()) return self->Fail(reply.status());
          self->SaveReply(std::move(reply).value());
        });
  }

  void ReplyFromRecall() {
    const int64_t started = options_.clock->NowMillis();
    ChatReply reply;
    reply.text = RecallAnswer(locrit_, recalled_);
    reply.model = std::string(kRecallModel);
    reply.attempts = 1;
    // Streamed a line at a time, like a model's deltas.
    size_t start = 0;
    while (start < reply.text.size()) {
      size_t end = reply.text.find('\n', start);
      end = end == std::string::npos ? reply.text.size() : end + 1;
      Deliver(std::string_view(reply.text).substr(start, end - start));
      start = end;
    }
    reply.latency_ms = options_.clock->NowMillis() - started;
    SaveReply(std::move(reply));
  }

  void Deliver(std::string_view delta) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_) return;
    }
    if (sink_) sink_(delta);
  }

  void SaveReply(ChatReply reply) {
    NewMessage message;
    message.session_id = result_.session_id;
    message.user_id = LocritUserId(locrit_.slug);
    message.user_name = locrit_.name;
    message.role = Role::kAssistant;
    message.content = reply.text;
    message.responds_to = result_.user_message_id;
    message.metadata = ReplyMetadata(reply);
    result_.response = reply.text;
    result_.model = reply.model;
    std::vector<std::string> memories;
    for (const RecalledItem& item : recalled_) {
      if (item.kind == RecalledItem::Kind::kMemory) memories.push_back(item.id);
    }
    auto self = shared_from_this();
    memory_->Write<SavedMessage>(
        [message, memories](MemoryStore& store) -> Result<SavedMessage> {
          ASSIGN_OR_RETURN(SavedMessage saved, store.SaveMessage(message));
          RETURN_IF_ERROR(store.TouchMemories(memories));
          return saved;
        },
        [self](Result<SavedMessage> saved) {
          if (!saved.ok()) return self->Fail(saved.status());
          self->result_.assistant_message_id = saved->id;
          self->result_.timestamp = saved->created_at;
          self->Finish(Status::Ok());
        });
  }

  // After the user's message is saved: it stays, marked unanswered.
  void Fail(Status error) {
    auto self = shared_from_this();
    const std::string id = result_.user_message_id;
    memory_->Write<bool>(
        [id](MemoryStore& store) -> Result<bool> {
          RETURN_IF_ERROR(store.SetMessageStatus(id, MessageStatus::kUnanswered));
          return true;
        },
        [self, error](Result<bool>) { self->Finish(error); });
  }

  void Finish(Status status) {
    Done done;
    LlmCall query_call;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done.swap(done_);
      client_.reset();
      query_call = std::move(query_call_);
    }
    query_call.Cancel();
    memory_.reset();
    IndexTurnMessages();
    if (done) done(std::move(status), std::move(result_));
  }

  // Hands the turn's saved messages to the background indexer (the first turn of a Locrit also
  // starts its backfill).
  void IndexTurnMessages() {
    const std::optional<EmbeddingTarget> target = EmbeddingTargetOf(locrit_);
    if (!target || options_.indexer == nullptr) return;
    std::vector<std::string> ids;
    if (!result_.user_message_id.empty()) ids.push_back(result_.user_message_id);
    if (!result_.assistant_message_id.empty()) ids.push_back(result_.assistant_message_id);
    options_.indexer->Enqueue(*target, std::move(ids));
  }

  const ChatServiceOptions& options_;
  const ChatLocrit locrit_;
  TurnRequest request_;
  const DeltaSink sink_;
  TurnResult result_;
  int64_t user_seq_ = 0;
  std::vector<RecalledItem> recalled_;
  MemoryManager::Handle memory_;

  std::mutex mu_;
  Done done_;                            // GUARDED_BY(mu_)
  bool saved_ = false;                   // GUARDED_BY(mu_): the user's message is durable.
  bool query_settled_ = false;           // GUARDED_BY(mu_): the question's vector came or not.
  std::vector<float> query_vector_;      // GUARDED_BY(mu_): empty: bm25 only.
  LlmCall query_call_;                   // GUARDED_BY(mu_)
  bool cancelled_ = false;               // GUARDED_BY(mu_)
  std::shared_ptr<LlmClient> client_;    // GUARDED_BY(mu_)
  LlmCall call_;                         // GUARDED_BY(mu_)
};

ChatService::ChatService(ChatServiceOptions options) : options_(options) {}

std::optional<EmbeddingTarget> ChatService::EmbeddingTargetOf(const ChatLocrit& locrit) {
  if (!locrit.llm || locrit.llm->embedding_model.empty()) return std::nullopt;
  EmbeddingTarget target;
  target.slug = locrit.slug;
  target.llm = *locrit.llm;
  target.max_messages = locrit.max_messages;
  return target;
}

std::shared_ptr<TurnHandle> ChatService::Turn(const ChatLocrit& locrit, TurnRequest request,
                                              DeltaSink sink, Done done) {
  auto state = std::make_shared<TurnState>(options_, locrit, std::move(request), std::move(sink),
                                           std::move(done));
  state->Start();
  return state;
}

}  // namespace locrit
