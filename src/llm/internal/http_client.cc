#include "llm/internal/http_client.h"

#include <fmt/format.h>

#include <chrono>
#include <utility>

#include "llm/internal/wire.h"

namespace locrit::llm_internal {
namespace {

bool IsOllama(const LlmSettings& s) { return s.provider == LlmProvider::kOllama; }

// Per-call state shared by the readers of each attempt and the completion.
struct ChatState {
  LlmClient::DeltaSink on_delta;
  ChatReply reply;  // Set when a reader finished.
};

class ChatReader final : public BodyReader {
 public:
  ChatReader(std::shared_ptr<ChatState> state, std::unique_ptr<ChatDecoder> decoder)
      : state_(std::move(state)), decoder_(std::move(decoder)) {}

  Result<bool> Consume(std::string_view bytes) override {
    bool emitted = false;
    RETURN_IF_ERROR(decoder_->Feed(bytes, Sink(emitted)));
    return emitted;
  }

  Status Finish() override {
    bool emitted = false;
    RETURN_IF_ERROR(decoder_->Finish(Sink(emitted)));
    state_->reply = std::move(decoder_->reply());
    return Status::Ok();
  }

 private:
  ChatDecoder::DeltaFn Sink(bool& emitted) {
    return [this, &emitted](std::string_view delta) {
      if (cancelled()) return;
      emitted = true;
      if (state_->on_delta) state_->on_delta(delta);
    };
  }

  std::shared_ptr<ChatState> state_;
  std::unique_ptr<ChatDecoder> decoder_;
};

// Keeps a whole (bounded by the transport) body.
class BufferReader final : public BodyReader {
 public:
  explicit BufferReader(std::shared_ptr<std::string> body) : body_(std::move(body)) {}
  Result<bool> Consume(std::string_view bytes) override {
    body_->append(bytes);
    return !bytes.empty();
  }
  Status Finish() override { return Status::Ok(); }

 private:
  std::shared_ptr<std::string> body_;
};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

HttpLlmClient::HttpLlmClient(std::shared_ptr<Transport> transport,
                             std::shared_ptr<const Endpoint> endpoint, LlmSettings settings,
                             std::shared_ptr<LlmMetrics> metrics)
    : transport_(std::move(transport)),
      endpoint_(std::move(endpoint)),
      settings_(std::move(settings)),
      metrics_(std::move(metrics)) {}

template <typename T>
LlmClient::Done<T> HttpLlmClient::Recorded(LlmCallKind kind, Done<T> done) const {
  const auto start = std::chrono::steady_clock::now();
  return [metrics = metrics_, provider = settings_.provider, kind, start,
          done = std::move(done)](Result<T> result) {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    metrics->Record(provider, kind, result.status().code(), micros);
    done(std::move(result));
  };
}

ExchangeSpec HttpLlmClient::Spec(std::string method, std::string_view api_path, std::string body,
                                 std::string accept) const {
  ExchangeSpec spec;
  spec.target = IsOllama(settings_) ? endpoint_->url.base_path + std::string(api_path)
                                    : OpenAiPath(endpoint_->url.base_path, api_path);
  spec.what = fmt::format("{} {} {}", LlmProviderName(settings_.provider), method, spec.target);
  spec.method = std::move(method);
  spec.body = std::move(body);
  spec.accept = std::move(accept);
  spec.bearer_token = settings_.api_key;
  spec.timeouts = settings_.timeouts;
  spec.retry = settings_.retry;
  spec.max_response_bytes = settings_.max_response_bytes;
  return spec;
}

LlmCall HttpLlmClient::Chat(ChatRequest request, DeltaSink on_delta, Done<ChatReply> done) {
  std::string model = request.model.empty() ? settings_.model : request.model;
  if (model.empty()) {
    done(InvalidArgumentError("no chat model is configured for this LLM server"));
    return LlmCall();
  }
  if (request.messages.empty()) {
    done(InvalidArgumentError("a chat request needs at least one message"));
    return LlmCall();
  }
  const bool ollama = IsOllama(settings_);
  ExchangeSpec spec =
      ollama ? Spec("POST", "/api/chat", OllamaChatBody(request, model), "application/x-ndjson")
             : Spec("POST", "/v1/chat/completions", OpenAiChatBody(request, model),
                    "text/event-stream");
  done = Recorded(LlmCallKind::kChat, std::move(done));
  auto state = std::make_shared<ChatState>();
  state->on_delta = std::move(on_delta);
  const size_t max_reply = settings_.max_reply_bytes;
  const size_t max_response = settings_.max_response_bytes;
  ReaderFactory readers = [state, ollama, max_reply, max_response](std::string_view content_type) {
    std::unique_ptr<ChatDecoder> decoder;
    if (ollama) {
      decoder = NewOllamaDecoder(max_reply, max_response);
    } else if (StartsWith(content_type, "text/event-stream")) {
      decoder = NewOpenAiSseDecoder(max_reply, max_response);
    } else {
      decoder = NewOpenAiOneShotDecoder(max_reply, max_response);
    }
    return std::make_unique<ChatReader>(state, std::move(decoder));
  };
  return transport_->Start(endpoint_, std::move(spec), std::move(readers),
                           [state, model = std::move(model), done = std::move(done)](
                               Status status, const ExchangeOutcome& outcome) {
                             if (!status.ok()) return done(std::move(status));
                             ChatReply reply = std::move(state->reply);
                             if (reply.model.empty()) reply.model = model;
                             reply.latency_ms = outcome.latency_ms;
                             reply.first_token_ms = outcome.first_progress_ms;
                             reply.attempts = outcome.attempts;
                             done(std::move(reply));
                           });
}

template <typename T>
LlmCall HttpLlmClient::Fetch(ExchangeSpec spec, std::function<Result<T>(std::string_view)> parse,
                             std::function<void(T&, const ExchangeOutcome&)> annotate,
                             LlmCallKind kind, Done<T> done) {
  done = Recorded(kind, std::move(done));
  auto body = std::make_shared<std::string>();
  ReaderFactory readers = [body](std::string_view) {
    body->clear();
    return std::make_unique<BufferReader>(body);
  };
  return transport_->Start(endpoint_, std::move(spec), std::move(readers),
                           [body, parse = std::move(parse), annotate = std::move(annotate),
                            done = std::move(done)](Status status, const ExchangeOutcome& outcome) {
                             if (!status.ok()) return done(std::move(status));
                             Result<T> result = parse(*body);
                             if (result.ok() && annotate) annotate(*result, outcome);
                             done(std::move(result));
                           });
}

LlmCall HttpLlmClient::Embed(EmbedRequest request, Done<Embeddings> done) {
  std::string model = !request.model.empty()               ? request.model
                      : !settings_.embedding_model.empty() ? settings_.embedding_model
                                                           : settings_.model;
  if (model.empty()) {
    done(InvalidArgumentError("no embedding model is configured for this LLM server"));
    return LlmCall();
  }
  if (request.inputs.empty()) {
    done(InvalidArgumentError("an embedding request needs at least one input"));
    return LlmCall();
  }
  const bool ollama = IsOllama(settings_);
  const size_t inputs = request.inputs.size();
  ExchangeSpec spec = Spec("POST", ollama ? "/api/embed" : "/v1/embeddings",
                           EmbedBody(request.inputs, model), "application/json");
  return Fetch<Embeddings>(
      std::move(spec),
      [ollama, inputs](std::string_view body) {
        return ollama ? ParseOllamaEmbeddings(body, inputs) : ParseOpenAiEmbeddings(body, inputs);
      },
      [model](Embeddings& e, const ExchangeOutcome& outcome) {
        if (e.model.empty()) e.model = model;
        e.latency_ms = outcome.latency_ms;
      },
      LlmCallKind::kEmbed, std::move(done));
}

LlmCall HttpLlmClient::ListModels(Done<std::vector<ModelInfo>> done) {
  const bool ollama = IsOllama(settings_);
  return Fetch<std::vector<ModelInfo>>(
      Spec("GET", ollama ? "/api/tags" : "/v1/models", "", "application/json"),
      [ollama](std::string_view body) {
        return ollama ? ParseOllamaModels(body) : ParseOpenAiModels(body);
      },
      nullptr, LlmCallKind::kModels, std::move(done));
}

}  // namespace locrit::llm_internal
