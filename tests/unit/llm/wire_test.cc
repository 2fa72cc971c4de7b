// The wire formats without sockets: stream decoders fed in every possible split, request bodies,
// response parsers, URL handling and the mapping of upstream errors.
#include "llm/internal/wire.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/matchers.h"

namespace locrit::llm_internal {
namespace {

using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr size_t kBig = 1 << 20;

struct Decoded {
  Status status;
  std::string text;
  std::vector<std::string> deltas;
  ChatReply reply;
};

// Feeds `body` in pieces of `piece` bytes, then finishes.
Decoded Decode(std::unique_ptr<ChatDecoder> decoder, std::string_view body, size_t piece) {
  Decoded out;
  auto sink = [&](std::string_view d) { out.deltas.emplace_back(d); };
  for (size_t i = 0; i < body.size() && out.status.ok(); i += piece) {
    out.status = decoder->Feed(body.substr(i, piece), sink);
  }
  if (out.status.ok()) out.status = decoder->Finish(sink);
  out.reply = decoder->reply();
  out.text = out.reply.text;
  return out;
}

const char kOllamaStream[] =
    "{\"model\":\"m1\",\"message\":{\"role\":\"assistant\",\"content\":\"Bon\"},\"done\":false}\n"
    "{\"model\":\"m1\",\"message\":{\"role\":\"assistant\",\"content\":\"jour\"},\"done\":false}"
    "\r\n"
    "\n"
    "{\"model\":\"m1\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
    "\"done_reason\":\"stop\",\"prompt_eval_count\":26,\"eval_count\":2}\n";

const char kOpenAiStream[] =
    ": keep-alive\n\n"
    "data: {\"model\":\"m2\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"model\":\"m2\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Bon\"},"
    "\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"model\":\"m2\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"jour\"},"
    "\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"model\":\"m2\",\"choices\":[],\"usage\":{\"prompt_tokens\":26,"
    "\"completion_tokens\":2}}\n\n"
    "data: [DONE]\n\n";

TEST(WireTest, OllamaStreamDecodesInEverySplit) {
  for (size_t piece = 1; piece <= sizeof kOllamaStream; ++piece) {
    Decoded d = Decode(NewOllamaDecoder(kBig, kBig), kOllamaStream, piece);
    ASSERT_THAT(d.status, IsOk()) << "piece " << piece;
    EXPECT_THAT(d.deltas, ElementsAre("Bon", "jour"));
    EXPECT_EQ(d.text, "Bonjour");
    EXPECT_EQ(d.reply.model, "m1");
    EXPECT_EQ(d.reply.finish_reason, "stop");
    EXPECT_EQ(d.reply.prompt_tokens, 26);
    EXPECT_EQ(d.reply.completion_tokens, 2);
  }
}

TEST(WireTest, OpenAiStreamDecodesInEverySplit) {
  for (size_t piece = 1; piece <= sizeof kOpenAiStream; ++piece) {
    Decoded d = Decode(NewOpenAiSseDecoder(kBig, kBig), kOpenAiStream, piece);
    ASSERT_THAT(d.status, IsOk()) << "piece " << piece;
    EXPECT_THAT(d.deltas, ElementsAre("Bon", "jour"));
    EXPECT_EQ(d.reply.model, "m2");
    EXPECT_EQ(d.reply.finish_reason, "stop");
    EXPECT_EQ(d.reply.prompt_tokens, 26);
    EXPECT_EQ(d.reply.completion_tokens, 2);
  }
}

TEST(WireTest, OneShotOllamaReplyWithoutNewline) {
  Decoded d = Decode(NewOllamaDecoder(kBig, kBig),
                     R"({"model":"m","message":{"content":"Salut"},"done":true})", 7);
  ASSERT_THAT(d.status, IsOk());
  EXPECT_THAT(d.deltas, ElementsAre("Salut"));
}

TEST(WireTest, OneShotOpenAiReply) {
  Decoded d =
      Decode(NewOpenAiOneShotDecoder(kBig, kBig),
             R"({"model":"m","choices":[{"message":{"role":"assistant","content":"Salut"},)"
             R"("finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":1}})",
             5);
  ASSERT_THAT(d.status, IsOk());
  EXPECT_THAT(d.deltas, ElementsAre("Salut"));
  EXPECT_EQ(d.reply.finish_reason, "length");
  EXPECT_EQ(d.reply.completion_tokens, 1);
}

TEST(WireTest, MultiLineSseDataIsJoined) {
  Decoded d = Decode(NewOpenAiSseDecoder(kBig, kBig),
                     "data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"x\"}}]}\n\n"
                     "data: [DONE]\n\n",
                     3);
  ASSERT_THAT(d.status, IsOk());
  EXPECT_EQ(d.text, "x");
}

struct BadStream {
  const char* name;
  bool ollama;
  const char* body;
  const char* expected;  // In the message.
};

class BadStreamTest : public ::testing::TestWithParam<BadStream> {};

TEST_P(BadStreamTest, IsLlmErrorNeverAShortAnswer) {
  const BadStream& c = GetParam();
  auto decoder = c.ollama ? NewOllamaDecoder(kBig, kBig) : NewOpenAiSseDecoder(kBig, kBig);
  Decoded d = Decode(std::move(decoder), c.body, 4);
  EXPECT_THAT(d.status, StatusIs(StatusCode::kLlmError));
  EXPECT_THAT(d.status.message(), HasSubstr(c.expected));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadStreamTest,
    ::testing::Values(
        BadStream{"OllamaTruncated", true, "{\"message\":{\"content\":\"a\"},\"done\":false}\n",
                  "without"},
        BadStream{"OllamaMalformed", true, "{\"message\":{\"cont\n", "malformed"},
        BadStream{"OllamaNotAnObject", true, "[1,2]\n", "not a JSON object"},
        BadStream{"OllamaErrorLine", true,
                  "{\"message\":{\"content\":\"a\"},\"done\":false}\n{\"error\":\"GPU lost\"}\n",
                  "GPU lost"},
        BadStream{"OpenAiTruncated", false,
                  "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", "[DONE]"},
        BadStream{"OpenAiMalformed", false, "data: {\"choi\n\n", "malformed"},
        BadStream{"OpenAiErrorEvent", false,
                  "data: {\"error\":{\"message\":\"context too long\"}}\n\n", "context too long"}),
    [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(WireTest, ReplyOverMaxReplyBytesIsRefused) {
  Decoded d =
      Decode(NewOllamaDecoder(5, kBig),
             "{\"message\":{\"content\":\"abc\"}}\n{\"message\":{\"content\":\"def\"}}\n", 100);
  EXPECT_THAT(d.status, StatusIs(StatusCode::kLlmError));
  EXPECT_THAT(d.status.message(), HasSubstr("max_reply_bytes (5"));
  EXPECT_THAT(d.deltas, ElementsAre("abc"));
}

TEST(WireTest, LineOverTheLineBoundIsRefused) {
  Decoded d = Decode(NewOllamaDecoder(kBig, 16), std::string(100, 'x'), 10);
  EXPECT_THAT(d.status, StatusIs(StatusCode::kLlmError));
}

TEST(WireTest, BaseUrls) {
  ASSERT_OK_AND_ASSIGN(ParsedUrl a, ParseBaseUrl("http://localhost:11434"));
  EXPECT_FALSE(a.tls);
  EXPECT_EQ(a.host, "localhost");
  EXPECT_EQ(a.port, "11434");
  EXPECT_EQ(a.host_header, "localhost:11434");
  EXPECT_EQ(a.base_path, "");
  ASSERT_OK_AND_ASSIGN(ParsedUrl b, ParseBaseUrl("https://llm.example/proxy/v1/"));
  EXPECT_TRUE(b.tls);
  EXPECT_EQ(b.port, "443");
  EXPECT_EQ(b.host_header, "llm.example");
  EXPECT_EQ(b.base_path, "/proxy/v1");
  ASSERT_OK_AND_ASSIGN(ParsedUrl c, ParseBaseUrl("http://[::1]:8080"));
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.host_header, "[::1]:8080");
  for (const char* bad :
       {"", "localhost:11434", "ftp://x", "http://", "http://u:p@h", "http://h/?q=1"}) {
    EXPECT_THAT(ParseBaseUrl(bad), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_EQ(OpenAiPath("", "/v1/models"), "/v1/models");
  EXPECT_EQ(OpenAiPath("/v1", "/v1/models"), "/v1/models");
  EXPECT_EQ(OpenAiPath("/proxy", "/v1/models"), "/proxy/v1/models");
}

TEST(WireTest, HttpErrorsMapToCodesWithTheUpstreamMessage) {
  struct Case {
    int status;
    const char* body;
    StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {404, R"({"error":"model \"x\" not found"})", StatusCode::kInvalidArgument,
       "model \"x\" not found"},
      {401, R"({"error":{"message":"bad key","type":"auth"}})", StatusCode::kInvalidArgument,
       "bad key"},
      {400, "plain text", StatusCode::kInvalidArgument, "plain text"},
      {408, "", StatusCode::kDeadlineExceeded, "408"},
      {429, R"({"message":"slow down"})", StatusCode::kResourceExhausted, "slow down"},
      {500, R"({"error":"boom"})", StatusCode::kLlmError, "boom"},
      {503, "<html>busy</html>", StatusCode::kLlmError, "busy"},
      {302, "", StatusCode::kLlmError, "302"},
  };
  for (const Case& c : cases) {
    Status s = StatusForHttpError(c.status, c.body, "ollama POST /api/chat");
    EXPECT_EQ(s.code(), c.code) << c.status;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
    EXPECT_THAT(s.message(), HasSubstr("ollama POST /api/chat"));
  }
  EXPECT_EQ(UpstreamErrorMessage(std::string(1000, 'a')).size(), 303u);
  EXPECT_TRUE(IsRetryableHttpStatus(503));
  EXPECT_FALSE(IsRetryableHttpStatus(404));
}

TEST(WireTest, RequestBodies) {
  ChatRequest r;
  r.messages = {{"user", "é \"quoted\""}};
  EXPECT_EQ(OllamaChatBody(r, "m"),
            R"({"model":"m","messages":[{"role":"user","content":"é \"quoted\""}],"stream":true})");
  EXPECT_EQ(EmbedBody({"a", "b"}, "e"), R"({"model":"e","input":["a","b"]})");
}

TEST(WireTest, EmbeddingsAndModels) {
  ASSERT_OK_AND_ASSIGN(Embeddings o,
                       ParseOllamaEmbeddings(R"({"model":"e","embeddings":[[1,0.5],[0,-1]]})", 2));
  EXPECT_THAT(o.vectors[1], ElementsAre(0.0f, -1.0f));
  ASSERT_OK_AND_ASSIGN(
      Embeddings a,
      ParseOpenAiEmbeddings(R"({"data":[{"index":1,"embedding":[2]},{"index":0,"embedding":[1]}]})",
                            2));
  EXPECT_THAT(a.vectors[0], ElementsAre(1.0f));
  EXPECT_THAT(a.vectors[1], ElementsAre(2.0f));
  EXPECT_THAT(ParseOllamaEmbeddings(R"({"embeddings":[[1]]})", 2), StatusIs(StatusCode::kLlmError));
  EXPECT_THAT(ParseOllamaEmbeddings(R"({"embeddings":[[1],[1,2]]})", 2),
              StatusIs(StatusCode::kLlmError));
  EXPECT_THAT(ParseOpenAiEmbeddings(R"({"data":[{"index":0,"embedding":["x"]}]})", 1),
              StatusIs(StatusCode::kLlmError));
  ASSERT_OK_AND_ASSIGN(auto models,
                       ParseOllamaModels(R"({"models":[{"name":"llama3:8b","size":42}]})"));
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].size_bytes, 42);
  ASSERT_OK_AND_ASSIGN(auto ids, ParseOpenAiModels(R"({"data":[{"id":"gpt"},{"id":""}]})"));
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0].name, "gpt");
  EXPECT_THAT(ParseOpenAiModels("nope"), StatusIs(StatusCode::kLlmError));
}

}  // namespace
}  // namespace locrit::llm_internal
