#include "tests/support/fake_llm_server.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace locrit::testing {
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

enum class Api {
  kOllamaChat,
  kOpenAiChat,
  kOllamaEmbed,
  kOpenAiEmbed,
  kOllamaTags,
  kOpenAiModels,
  kUnknown
};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Api ApiFor(std::string_view target) {
  if (EndsWith(target, "/api/chat")) return Api::kOllamaChat;
  if (EndsWith(target, "/v1/chat/completions")) return Api::kOpenAiChat;
  if (EndsWith(target, "/api/embed")) return Api::kOllamaEmbed;
  if (EndsWith(target, "/v1/embeddings")) return Api::kOpenAiEmbed;
  if (EndsWith(target, "/api/tags")) return Api::kOllamaTags;
  if (EndsWith(target, "/v1/models")) return Api::kOpenAiModels;
  return Api::kUnknown;
}

bool IsOllama(Api api) {
  return api == Api::kOllamaChat || api == Api::kOllamaEmbed || api == Api::kOllamaTags;
}

// A self-signed certificate (CA:TRUE, SAN 127.0.0.1 and localhost) and its key, as PEM.
struct Credentials {
  std::string certificate;
  std::string key;
};

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

void Die(const char* what) {
  std::fprintf(stderr, "FakeLlmServer: %s\n", what);
  std::abort();
}

void AddExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr || X509_add_ext(cert, ext, -1) != 1) Die("cannot add a certificate extension");
  X509_EXTENSION_free(ext);
}

Credentials SelfSigned() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", const_cast<char*>("P-256"));
  if (key == nullptr) Die("cannot generate a key");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("locrit fake LLM"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  AddExtension(cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  if (X509_sign(cert, key, EVP_sha256()) == 0) Die("cannot sign the certificate");
  Credentials out;
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  out.certificate = BioText(bio);
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  out.key = BioText(bio);
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += p;
  return out;
}

std::string ChunkOf(std::string_view data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return std::string(size) + std::string(data) + "\r\n";
}

json::value ParseOrNull(const std::string& body) {
  error_code ec;
  json::value v = json::parse(body, ec);
  return ec ? json::value() : v;
}

std::string RequestedModel(const json::value& request) {
  if (const json::object* o = request.if_object()) {
    if (const json::value* m = o->if_contains("model"); m != nullptr && m->is_string()) {
      return std::string(m->get_string());
    }
  }
  return "";
}

std::vector<std::string> Inputs(const json::value& request) {
  std::vector<std::string> out;
  const json::object* o = request.if_object();
  const json::value* input = o == nullptr ? nullptr : o->if_contains("input");
  if (input == nullptr) return out;
  if (input->is_string()) out.emplace_back(input->get_string());
  if (input->is_array()) {
    for (const auto& i : input->get_array()) {
      if (i.is_string()) out.emplace_back(i.get_string());
    }
  }
  return out;
}

}  // namespace

struct FakeLlmServer::Impl {
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::optional<ssl::context> tls;
  std::thread accept_thread;

  mutable std::mutex mu;
  std::condition_variable changed;
  bool stopping = false;                  // GUARDED_BY(mu)
  std::deque<FakeReply> script;           // GUARDED_BY(mu)
  FakeReply default_reply;                // GUARDED_BY(mu)
  std::optional<FakeReply> embedding_reply;  // GUARDED_BY(mu)
  std::vector<RecordedRequest> requests;  // GUARDED_BY(mu)
  bool released = false;                  // GUARDED_BY(mu)
  int disconnects = 0;                    // GUARDED_BY(mu)
  std::vector<std::thread> connections;   // GUARDED_BY(mu)
  std::map<int, int> open_fds;            // GUARDED_BY(mu): fd -> use count (for shutdown).
  std::atomic<bool> sent_last{false};

  void AcceptLoop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(ioc);
      error_code ec;
      acceptor.accept(*socket, ec);
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return;
      if (ec) continue;
      open_fds[socket->native_handle()]++;
      connections.emplace_back([this, socket] { Serve(socket); });
    }
  }

  void Serve(const std::shared_ptr<tcp::socket>& socket) {
    const int fd = socket->native_handle();
    if (tls) {
      ssl::stream<tcp::socket&> stream(*socket, *tls);
      error_code ec;
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) Handle(stream, fd);
    } else {
      Handle(*socket, fd);
    }
    std::lock_guard<std::mutex> lock(mu);
    if (--open_fds[fd] == 0) open_fds.erase(fd);
    error_code ignored;
    socket->close(ignored);
  }

  // Waits `d`, or less when the server stops. True if it stopped.
  bool Sleep(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu);
    return changed.wait_for(lock, d, [this] { return stopping; });
  }

  // Blocks until the client goes away (or the server stops), and counts it.
  void StallUntilClientLeaves(int fd) {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) {
        // The client never writes again after its request: readable means it left.
        std::lock_guard<std::mutex> lock(mu);
        ++disconnects;
        changed.notify_all();
        return;
      }
    }
  }

  FakeReply NextReply(Api api) {
    std::lock_guard<std::mutex> lock(mu);
    if (embedding_reply && (api == Api::kOllamaEmbed || api == Api::kOpenAiEmbed)) {
      return *embedding_reply;
    }
    if (script.empty()) return default_reply;
    FakeReply r = std::move(script.front());
    script.pop_front();
    return r;
  }

  template <typename Stream>
  bool Write(Stream& stream, std::string_view data) {
    error_code ec;
    net::write(stream, net::buffer(data.data(), data.size()), ec);
    return !ec;
  }

  template <typename Stream>
  bool WriteWhole(Stream& stream, int status, std::string_view content_type,
                  const std::string& body) {
    std::string head = "HTTP/1.1 " + std::to_string(status) +
                       " Scripted\r\nContent-Type: " + std::string(content_type) +
                       "\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nConnection: close\r\n\r\n";
    return Write(stream, head + body);
  }

  template <typename Stream>
  void Handle(Stream& stream, int fd) {
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    error_code ec;
    http::read(stream, buffer, request, ec);
    if (ec) return;
    const std::string target(request.target());
    {
      std::lock_guard<std::mutex> lock(mu);
      requests.push_back(RecordedRequest{std::string(request.method_string()), target,
                                         std::string(request[http::field::authorization]),
                                         std::string(request[http::field::accept]),
                                         request.body()});
    }
    const Api api = ApiFor(target);
    FakeReply reply = NextReply(api);
    if (reply.first_token_delay.count() > 0 && Sleep(reply.first_token_delay)) return;
    if (api == Api::kUnknown) {
      WriteWhole(stream, 404, "application/json", R"({"error":"no such path"})");
      return;
    }
    if (reply.status != 200) {
      json::value body = IsOllama(api) ? json::value{{"error", reply.error_message}}
                                       : json::value{{"error",
                                                      {{"message", reply.error_message},
                                                       {"type", "invalid_request_error"}}}};
      WriteWhole(stream, reply.status, "application/json", json::serialize(body));
      return;
    }
    const json::value body = ParseOrNull(request.body());
    std::string model = reply.model.empty() ? RequestedModel(body) : reply.model;
    if (api == Api::kOllamaChat || api == Api::kOpenAiChat) {
      Chat(stream, fd, api == Api::kOllamaChat, reply, model);
      return;
    }
    if (reply.end == FakeReply::End::kStall) return StallUntilClientLeaves(fd);
    if (reply.end == FakeReply::End::kDisconnect) return;
    WriteWhole(stream, 200, "application/json", json::serialize(Other(api, body, model)));
  }

  static json::value Other(Api api, const json::value& request, const std::string& model) {
    switch (api) {
      case Api::kOllamaEmbed:
      case Api::kOpenAiEmbed: {
        json::array vectors;
        json::array data;
        int index = 0;
        for (const std::string& input : Inputs(request)) {
          json::array v;
          for (float x : EmbeddingFor(input)) v.push_back(x);
          data.push_back(
              json::object{{"object", "embedding"}, {"index", index++}, {"embedding", v}});
          vectors.push_back(std::move(v));
        }
        if (api == Api::kOllamaEmbed) return {{"model", model}, {"embeddings", vectors}};
        return {{"object", "list"}, {"model", model}, {"data", data}};
      }
      case Api::kOllamaTags:
        return {{"models", json::array{json::object{{"name", "fake-chat:latest"},
                                                    {"model", "fake-chat:latest"},
                                                    {"size", 1234}},
                                       json::object{{"name", "fake-embed:latest"},
                                                    {"model", "fake-embed:latest"},
                                                    {"size", 567}}}}};
      case Api::kOpenAiModels:
        return {{"object", "list"},
                {"data", json::array{json::object{{"id", "fake-chat"}, {"object", "model"}},
                                     json::object{{"id", "fake-embed"}, {"object", "model"}}}}};
      default:
        return json::value();
    }
  }

  static std::string OllamaLine(const std::string& model, std::string_view content, bool done,
                                const FakeReply& reply) {
    json::object line{{"model", model},
                      {"created_at", "2024-01-01T00:00:00Z"},
                      {"message", {{"role", "assistant"}, {"content", content}}},
                      {"done", done}};
    if (done) {
      line["done_reason"] = "stop";
      line["prompt_eval_count"] = reply.prompt_tokens;
      line["eval_count"] = reply.completion_tokens;
    }
    return json::serialize(line) + "\n";
  }

  static std::string OpenAiEvent(const json::value& chunk) {
    return "data: " + json::serialize(chunk) + "\n\n";
  }

  static json::value OpenAiChunk(const std::string& model, std::optional<std::string_view> content,
                                 const char* finish_reason) {
    json::object delta;
    if (content) delta["content"] = *content;
    json::value finish = finish_reason == nullptr ? json::value() : json::value(finish_reason);
    return {{"id", "chatcmpl-fake"},
            {"object", "chat.completion.chunk"},
            {"model", model},
            {"choices",
             json::array{json::object{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}}}};
  }

  template <typename Stream>
  void Chat(Stream& stream, int fd, bool ollama, const FakeReply& reply, const std::string& model) {
    using End = FakeReply::End;
    if (reply.one_shot) {
      const std::string text = Join(reply.deltas);
      json::value whole =
          ollama
              ? ParseOrNull(OllamaLine(model, text, true, reply))
              : json::value{{"id", "chatcmpl-fake"},
                            {"object", "chat.completion"},
                            {"model", model},
                            {"choices", json::array{json::object{
                                            {"index", 0},
                                            {"message", {{"role", "assistant"}, {"content", text}}},
                                            {"finish_reason", "stop"}}}},
                            {"usage",
                             {{"prompt_tokens", reply.prompt_tokens},
                              {"completion_tokens", reply.completion_tokens}}}};
      WriteWhole(stream, 200, "application/json", json::serialize(whole));
      return;
    }
    const std::string head = std::string("HTTP/1.1 200 OK\r\nContent-Type: ") +
                             (ollama ? "application/x-ndjson" : "text/event-stream") +
                             "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if (!Write(stream, head)) return;
    const bool misbehaves = reply.end == End::kStall || reply.end == End::kDisconnect ||
                            reply.end == End::kMalformedLine;
    for (size_t i = 0; i <= reply.deltas.size(); ++i) {
      if (misbehaves && i == reply.end_after) {
        if (reply.end == End::kStall) return StallUntilClientLeaves(fd);
        if (reply.end == End::kDisconnect) return;
        if (!Write(stream, ChunkOf(ollama ? "{\"model\": \"x\", \"mess\n" : "data: {\"choi\n\n"))) {
          return;
        }
      }
      if (i == reply.deltas.size()) break;
      if (reply.hold_before_last && i + 1 == reply.deltas.size()) {
        std::unique_lock<std::mutex> lock(mu);
        changed.wait_for(lock, std::chrono::seconds(10), [this] { return released || stopping; });
        if (stopping) return;
        sent_last = true;
      }
      const std::string& d = reply.deltas[i];
      const std::string piece =
          ollama ? OllamaLine(model, d, false, reply) : OpenAiEvent(OpenAiChunk(model, d, nullptr));
      if (!Write(stream, ChunkOf(piece))) return;
    }
    if (reply.end != End::kNoDoneMarker) {
      std::string tail;
      if (ollama) {
        tail = OllamaLine(model, "", true, reply);
      } else {
        tail = OpenAiEvent(OpenAiChunk(model, std::nullopt, "stop"));
        json::value usage{{"id", "chatcmpl-fake"},
                          {"object", "chat.completion.chunk"},
                          {"model", model},
                          {"choices", json::array()},
                          {"usage",
                           {{"prompt_tokens", reply.prompt_tokens},
                            {"completion_tokens", reply.completion_tokens},
                            {"total_tokens", reply.prompt_tokens + reply.completion_tokens}}}};
        tail += OpenAiEvent(usage) + "data: [DONE]\n\n";
      }
      if (!Write(stream, ChunkOf(tail))) return;
    }
    Write(stream, "0\r\n\r\n");
  }
};

FakeLlmServer::FakeLlmServer(Options options) : impl_(std::make_unique<Impl>()), tls_(options.tls) {
  if (tls_) {
    Credentials credentials = SelfSigned();
    certificate_pem_ = credentials.certificate;
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->use_certificate_chain(net::buffer(credentials.certificate));
    impl_->tls->use_private_key(net::buffer(credentials.key), ssl::context::pem);
  }
  tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->accept_thread = std::thread([impl = impl_.get()] { impl->AcceptLoop(); });
}

FakeLlmServer::~FakeLlmServer() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    impl_->changed.notify_all();
    // Unblocks connections waiting to read a request.
    for (const auto& [fd, uses] : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
  }
  {
    // Wakes the blocking accept.
    net::io_context ioc;
    tcp::socket poke(ioc);
    error_code ignored;
    poke.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ignored);
  }
  impl_->accept_thread.join();
  std::vector<std::thread> connections;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    connections.swap(impl_->connections);
  }
  for (std::thread& t : connections) t.join();
}

std::string FakeLlmServer::url() const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

void FakeLlmServer::Script(FakeReply reply) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->script.push_back(std::move(reply));
}

void FakeLlmServer::SetDefault(FakeReply reply) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->default_reply = std::move(reply);
}

void FakeLlmServer::SetEmbeddingReply(std::optional<FakeReply> reply) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->embedding_reply = std::move(reply);
}

std::vector<RecordedRequest> FakeLlmServer::Requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests;
}

void FakeLlmServer::Release() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->released = true;
  impl_->changed.notify_all();
}

bool FakeLlmServer::SentLast() const { return impl_->sent_last.load(); }

bool FakeLlmServer::WaitForClientDisconnects(int n, std::chrono::milliseconds within) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->changed.wait_for(lock, within, [&] { return impl_->disconnects >= n; });
}

std::vector<float> FakeLlmServer::EmbeddingFor(std::string_view text) {
  // FNV-1a, then a xorshift stream seeded by it: stable across runs and platforms.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  std::vector<float> v(kEmbeddingDims);
  double norm = 0;
  for (float& x : v) {
    h ^= h << 13;
    h ^= h >> 7;
    h ^= h << 17;
    x = static_cast<float>(static_cast<double>(h % 2001) / 1000.0 - 1.0);
    norm += static_cast<double>(x) * x;
  }
  if (norm == 0) {
    v[0] = 1;
    norm = 1;
  }
  for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

uint16_t FakeLlmServer::UnusedPort() {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

}  // namespace locrit::testing
