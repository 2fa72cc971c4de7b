// /api/conversations: server-side conversations (API.md "Conversations"), for the operator. A
// conversation is one user's session with one Locrit; the store keeps who and how many, the
// Locrit's memory keeps the messages.
#include <utility>

#include "base/thread_pool.h"
#include "memory/memory_manager.h"
#include "server/api.h"

namespace locrit {
namespace json = boost::json;
namespace {

constexpr int64_t kDefaultMessages = 50;

std::optional<LocritConfig> LocritBySlug(const LocritRegistry& registry, const std::string& slug) {
  for (LocritConfig& c : registry.List()) {
    if (c.slug == slug) return std::move(c);
  }
  return std::nullopt;
}

// The conversation's fields without its messages. `locrit_name` is the Locrit's current name.
json::object ConversationObject(const Conversation& c, const std::string& locrit_name) {
  boost::system::error_code ec;
  json::value metadata = json::parse(c.metadata, ec);
  if (ec) metadata = json::object();
  return json::object{{"conversation_id", c.id},
                      {"locrit_name", locrit_name},
                      {"user_id", c.user_id},
                      {"session_id", c.session_id},
                      {"created_at", FormatRfc3339Millis(c.created_at)},
                      {"last_activity", FormatRfc3339Millis(c.last_activity)},
                      {"message_count", c.message_count},
                      {"metadata", std::move(metadata)}};
}

// {locrit_name, user_id?, metadata?}.
struct CreateBody {
  std::string locrit_name;
  std::string user_id = "anonymous";
  std::string metadata = "{}";
};

std::variant<CreateBody, HttpError> ParseCreateBody(const HttpRequest& request) {
  auto parsed = ParseJsonObjectBody(request);
  if (auto* error = std::get_if<HttpError>(&parsed)) return *error;
  const json::object& body = std::get<json::object>(parsed);
  CreateBody out;
  if (auto e = OptionalStringField(body, "locrit_name", 256, &out.locrit_name)) return *e;
  if (out.locrit_name.empty()) return HttpError{400, "invalid_argument", "locrit_name is required"};
  if (auto e = OptionalStringField(body, "user_id", kMaxIdChars, &out.user_id)) return *e;
  if (out.user_id.empty()) return HttpError{400, "invalid_argument", "user_id must not be empty"};
  if (const json::value* metadata = body.if_contains("metadata");
      metadata != nullptr && !metadata->is_null()) {
    if (!metadata->is_object()) {
      return HttpError{400, "invalid_argument", "metadata must be a JSON object"};
    }
    out.metadata = json::serialize(*metadata);
    if (out.metadata.size() > ConversationStore::kMaxMetadataBytes) {
      return PayloadTooLargeError("metadata is larger than " +
                                  std::to_string(ConversationStore::kMaxMetadataBytes) + " bytes");
    }
  }
  return out;
}

}  // namespace

void Api::RouteConversations(const Route& route) {
  const std::vector<std::string>& s = route.seg;
  const std::string& method = route.request.method;
  if (route.RefuseUnlessOperator()) return;
  ConversationStore& store = *options_.conversations;

  if (s.size() == 2) {  // GET /api/conversations?user_id=&locrit_name=&limit=
    if (method != "GET") return route.WrongMethod("GET");
    ConversationFilter filter;
    auto limit = IntParam(route.request.target, "limit", 50, 1, ConversationStore::kMaxList);
    if (auto* error = std::get_if<HttpError>(&limit)) return route.Fail(*error);
    filter.limit = static_cast<int>(std::get<int64_t>(limit));
    filter.user_id = QueryParam(route.request.target, "user_id");
    if (std::optional<std::string> name = QueryParam(route.request.target, "locrit_name")) {
      Result<LocritConfig> locrit = options_.registry->Get(*name);
      if (!locrit.ok()) return route.Fail(ErrorForStatus(locrit.status()));
      filter.locrit_slug = locrit->slug;
    }
    json::array list;
    for (const Conversation& c : store.List(filter)) {
      const std::optional<LocritConfig> locrit = LocritBySlug(*options_.registry, c.locrit_slug);
      list.push_back(ConversationObject(c, locrit ? locrit->name : ""));
    }
    const size_t count = list.size();
    return route.Send(JsonResponse(
        200, {{"success", true}, {"conversations", std::move(list)}, {"count", count}}));
  }

  if (s.size() == 3 && s[2] == "create") {
    if (method != "POST") return route.WrongMethod("POST");
    auto parsed = ParseCreateBody(route.request);
    if (auto* error = std::get_if<HttpError>(&parsed)) return route.Fail(*error);
    CreateBody body = std::move(std::get<CreateBody>(parsed));
    Result<LocritConfig> locrit = options_.registry->Get(body.locrit_name);
    if (!locrit.ok()) return route.Fail(ErrorForStatus(locrit.status()));
    if (auto refused = ChatGate(*locrit, ChatChannel::kOperator)) return route.Fail(*refused);
    // The insert waits for its fsync: off the network thread.
    const bool posted = options_.pool->Post([&store, reply = route.reply(), locrit = *locrit,
                                             body = std::move(body)]() {
      Result<Conversation> created = store.Create(locrit.slug, body.user_id, body.metadata);
      if (!created.ok()) return reply.Fail(ErrorForStatus(created.status()));
      reply.Send(JsonResponse(201, {{"success", true},
                                    {"conversation_id", created->id},
                                    {"locrit_name", locrit.name},
                                    {"session_id", created->session_id},
                                    {"created_at", FormatRfc3339Millis(created->created_at)}}));
    });
    if (!posted) route.Fail({503, "unavailable", "the server is shutting down"});
    return;
  }

  if (s.size() < 3 || s.size() > 4 || (s.size() == 4 && s[3] != "message" && s[3] != "info")) {
    return route.NotFound();
  }
  const bool is_message = s.size() == 4 && s[3] == "message";
  const bool is_info = s.size() == 4 && s[3] == "info";
  if (is_message && method != "POST") return route.WrongMethod("POST");
  if (is_info && method != "GET") return route.WrongMethod("GET");
  if (s.size() == 3 && method != "GET" && method != "DELETE") return route.WrongMethod("GET, DELETE");

  std::optional<Conversation> conversation = store.Get(s[2]);
  if (!conversation) return route.Fail({404, "not_found", "no conversation " + s[2]});
  std::optional<LocritConfig> locrit = LocritBySlug(*options_.registry, conversation->locrit_slug);

  if (is_info) {
    return route.Send(JsonResponse(200, {{"success", true},
                                         {"conversation", ConversationObject(
                                              *conversation, locrit ? locrit->name : "")}}));
  }
  if (method == "DELETE") {
    const std::optional<std::string> purge = QueryParam(route.request.target, "purge");
    if (purge && *purge != "true" && *purge != "false") {
      return route.Fail({400, "invalid_argument", "purge must be true or false"});
    }
    const bool purge_messages = purge && *purge == "true";
    if (purge_messages && !locrit) {
      return route.Fail({404, "not_found", "the Locrit of conversation " + conversation->id +
                                               " no longer exists; its messages are gone with it"});
    }
    auto forget = [&store, reply = route.reply(), id = conversation->id](Status purged) {
      if (!purged.ok() && purged.code() != StatusCode::kNotFound) {
        return reply.Fail(ErrorForStatus(purged));
      }
      Status deleted = store.Delete(id);
      if (!deleted.ok()) return reply.Fail(ErrorForStatus(deleted));
      reply.Send(JsonResponse(200, {{"success", true}}));
    };
    if (!purge_messages) {
      if (!options_.pool->Post([forget] { forget(Status::Ok()); })) {
        route.Fail({503, "unavailable", "the server is shutting down"});
      }
      return;
    }
    // The messages go first: a conversation whose purge failed can be deleted again.
    LocritMemoryOptions memory_options;
    memory_options.max_messages = locrit->memory.max_messages;
    options_.memory->Get(
        locrit->slug, memory_options,
        [forget, reply = route.reply(),
         session = conversation->session_id](Result<MemoryManager::Handle> memory) {
          if (!memory.ok()) return reply.Fail(ErrorForStatus(memory.status()));
          (*memory)->Write<bool>(
              [session](MemoryStore& m) -> Result<bool> {
                RETURN_IF_ERROR(m.DeleteSession(session));
                return true;
              },
              [forget](Result<bool> done) { forget(done.status()); });
        });
    return;
  }

  if (!locrit) {
    return route.Fail({404, "not_found", "the Locrit of conversation " + conversation->id +
                                             " no longer exists"});
  }
  if (is_message) {
    return Chat(route, *locrit, ChatChannel::kOperator, /*stream=*/false, std::move(conversation));
  }

  // GET /api/conversations/{id}?limit=50: the newest messages, oldest first.
  auto limit = IntParam(route.request.target, "limit", kDefaultMessages, 1, MemoryStore::kMaxHistory);
  if (auto* error = std::get_if<HttpError>(&limit)) return route.Fail(*error);
  LocritMemoryOptions memory_options;
  memory_options.max_messages = locrit->memory.max_messages;
  json::object head = ConversationObject(*conversation, locrit->name);
  head["success"] = true;
  options_.memory->Get(
      locrit->slug, memory_options,
      [reply = route.reply(), head = std::move(head), session = conversation->session_id,
       count = static_cast<int>(std::get<int64_t>(limit))](
          Result<MemoryManager::Handle> memory) mutable {
        if (!memory.ok()) return reply.Fail(ErrorForStatus(memory.status()));
        (*memory)->Read<std::vector<Message>>(
            [session, count](MemoryStore& m) {
              HistoryQuery query;
              query.session_id = session;
              query.limit = count;
              Result<std::vector<Message>> messages = m.History(query);
              // Before its first message the conversation's session does not exist yet.
              if (messages.status().code() == StatusCode::kNotFound) {
                return Result<std::vector<Message>>(std::vector<Message>{});
              }
              return messages;
            },
            [reply, head = std::move(head)](Result<std::vector<Message>> messages) mutable {
              if (!messages.ok()) return reply.Fail(ErrorForStatus(messages.status()));
              json::array list;
              for (const Message& m : *messages) list.push_back(MessageObject(m));
              head["messages"] = std::move(list);
              reply.Send(JsonResponse(200, head));
            });
      });
}

}  // namespace locrit
