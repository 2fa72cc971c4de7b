// /api/locrits, /api/create-locrit and /api/llm/models: the operator's management of Locrits,
// and the legacy chat routes under /api/locrits/{name}.
//
// Registry writes do file I/O (an fsync per commit), so they run on the work pool and answer from
// there; lookups, validation of the body and listing stay on the calling thread (all in memory).
#include <algorithm>
#include <chrono>
#include <utility>

#include "base/thread_pool.h"
#include "llm/llm_runtime.h"
#include "memory/memory_manager.h"
#include "server/api.h"
#include "server/api_locrit_fields.h"

namespace locrit {
namespace json = boost::json;
namespace {

// A model listing is a quick question: it should not inherit the generous first-token wait of a
// chat turn (Ollama loading a model).
constexpr std::chrono::milliseconds kListModelsConnect{5'000};
constexpr std::chrono::milliseconds kListModelsTotal{15'000};

HttpResponse LocritResponse(int status, const LocritConfig& locrit) {
  return JsonResponse(status, {{"success", true}, {"locrit", LocritObject(locrit)}});
}

// `?purge_memory=`: absent, "false" or "0" keep the memory; "true" or "1" purge it.
std::variant<bool, HttpError> PurgeMemoryParam(std::string_view target) {
  const std::optional<std::string> value = QueryParam(target, "purge_memory");
  if (!value || *value == "false" || *value == "0") return false;
  if (*value == "true" || *value == "1" || value->empty()) return true;
  return HttpError{400, "invalid_argument", "purge_memory must be true or false"};
}

}  // namespace

void Api::RouteLocrits(const Route& route) {
  const std::vector<std::string>& s = route.seg;
  const std::string& method = route.request.method;
  const bool get = method == "GET";
  const bool post = method == "POST";
  if (s[1] == "locrits" && s.size() >= 4 && s[3] == "memory") {
    // RouteMemory decides who may read what (public quick and full memory access).
    Result<LocritConfig> locrit = options_.registry->Get(s[2]);
    if (!locrit.ok()) return route.Fail(ErrorForStatus(locrit.status()));
    return RouteMemory(route, *locrit);
  }
  if (route.RefuseUnlessOperator()) return;

  if (s[1] == "create-locrit") {
    if (s.size() != 2) return route.NotFound();
    if (!post) return route.WrongMethod("POST");
    return CreateLocrit(route);
  }
  if (s[1] == "llm") {
    if (s.size() != 3 || s[2] != "models") return route.NotFound();
    if (!get) return route.WrongMethod("GET");
    return ListLlmModels(route);
  }
  if (s[1] != "locrits") return route.NotFound();
  if (s.size() == 2) {
    if (post) return CreateLocrit(route);
    if (!get) return route.WrongMethod("GET, POST");
    json::array list;
    for (const LocritConfig& c : options_.registry->List()) list.push_back(LocritObject(c));
    const size_t count = list.size();
    return route.Send(
        JsonResponse(200, {{"success", true}, {"locrits", std::move(list)}, {"count", count}}));
  }

  const bool is_locrit = s.size() == 3;
  const bool is_config = s.size() == 4 && s[3] == "config";
  const bool is_action =
      s.size() == 4 && (s[3] == "rename" || s[3] == "toggle" || s[3] == "delete");
  const bool is_chat = s.size() == 4 && s[3] == "chat";
  const bool is_stream = s.size() == 5 && s[3] == "chat" && s[4] == "stream";
  if (!is_locrit && !is_config && !is_action && !is_chat && !is_stream) {
    return route.NotFound();
  }
  const bool put = method == "PUT";
  if (is_locrit && !get && !put && method != "PATCH" && method != "DELETE") {
    return route.WrongMethod("GET, PUT, PATCH, DELETE");
  }
  if (is_config && !get && !put) return route.WrongMethod("GET, PUT");
  if ((is_action || is_chat || is_stream) && !post) return route.WrongMethod("POST");
  Result<LocritConfig> locrit = options_.registry->Get(s[2]);
  if (!locrit.ok()) return route.Fail(ErrorForStatus(locrit.status()));
  if (is_chat || is_stream) return Chat(route, *locrit, ChatChannel::kOperator, is_stream);
  if ((is_locrit || is_config) && get) return route.Send(LocritResponse(200, *locrit));
  if (method == "DELETE" || (is_action && s[3] == "delete")) return DeleteLocrit(route, *locrit);
  if (is_locrit || is_config) return UpdateLocrit(route, *locrit);
  if (s[3] == "rename") return RenameLocrit(route, *locrit);
  return ToggleLocrit(route, *locrit);
}

void Api::RunWork(const Route& route, std::function<void()> work) const {
  if (!options_.pool->Post(std::move(work))) {
    route.Fail({503, "unavailable", "the server is shutting down"});
  }
}

void Api::CreateLocrit(const Route& route) {
  auto parsed = ParseJsonObjectBody(route.request);
  if (auto* error = std::get_if<HttpError>(&parsed)) return route.Fail(*error);
  const json::object& body = std::get<json::object>(parsed);
  for (const char* required : {"name", "description"}) {
    const json::value* v = body.if_contains(required);
    if (v == nullptr || v->is_null()) {
      return route.Fail({400, "invalid_argument", std::string(required) + " is required"});
    }
  }
  LocritConfig config = NewLocritDefaults(options_.llm_defaults);
  if (Status applied = ApplyLocritFields(body, &config); !applied.ok()) {
    return route.Fail(ErrorForStatus(applied));
  }
  if (config.description.find_first_not_of(" \t\r\n") == std::string::npos) {
    return route.Fail({400, "invalid_argument", "description is required (not blank)"});
  }
  RunWork(route, [registry = options_.registry, reply = route.reply(),
                  config = std::move(config)]() mutable {
    Result<LocritConfig> created = registry->Create(std::move(config));
    if (!created.ok()) return reply.Fail(ErrorForStatus(created.status()));
    reply.Send(LocritResponse(201, *created));
  });
}

void Api::UpdateLocrit(const Route& route, const LocritConfig& locrit) {
  auto parsed = ParseJsonObjectBody(route.request);
  if (auto* error = std::get_if<HttpError>(&parsed)) return route.Fail(*error);
  RunWork(route, [registry = options_.registry, reply = route.reply(), name = locrit.name,
                  body = std::move(std::get<json::object>(parsed))] {
    Result<LocritConfig> updated = registry->Update(
        name, [&body](LocritConfig& config) { return ApplyLocritFields(body, &config); });
    if (!updated.ok()) return reply.Fail(ErrorForStatus(updated.status()));
    reply.Send(LocritResponse(200, *updated));
  });
}

void Api::RenameLocrit(const Route& route, const LocritConfig& locrit) {
  auto parsed = ParseJsonObjectBody(route.request);
  if (auto* error = std::get_if<HttpError>(&parsed)) return route.Fail(*error);
  const json::value* new_name = std::get<json::object>(parsed).if_contains("new_name");
  if (new_name == nullptr || new_name->is_null()) {
    return route.Fail({400, "invalid_argument", "new_name is required"});
  }
  if (!new_name->is_string()) {
    return route.Fail({400, "invalid_argument", "new_name must be a string"});
  }
  std::string wanted(new_name->get_string().data(), new_name->get_string().size());
  if (Status valid = ValidateLocritName(wanted); !valid.ok()) {
    return route.Fail({400, "invalid_argument", "new_name: " + valid.message()});
  }
  RunWork(route, [registry = options_.registry, reply = route.reply(),
                  old_name = locrit.name, wanted = std::move(wanted)]() mutable {
    Result<LocritConfig> renamed = registry->Rename(old_name, std::move(wanted));
    if (!renamed.ok()) return reply.Fail(ErrorForStatus(renamed.status()));
    reply.Send(JsonResponse(
        200, {{"success", true}, {"old_name", old_name}, {"new_name", renamed->name}}));
  });
}

void Api::ToggleLocrit(const Route& route, const LocritConfig& locrit) {
  // No body is needed; one that is sent is ignored.
  RunWork(route, [registry = options_.registry, reply = route.reply(), name = locrit.name] {
    Result<LocritConfig> toggled = registry->Toggle(name);
    if (!toggled.ok()) return reply.Fail(ErrorForStatus(toggled.status()));
    reply.Send(JsonResponse(
        200, {{"success", true}, {"locrit_name", toggled->name}, {"active", toggled->active}}));
  });
}

void Api::DeleteLocrit(const Route& route, const LocritConfig& locrit) {
  auto purge = PurgeMemoryParam(route.request.target);
  if (auto* error = std::get_if<HttpError>(&purge)) return route.Fail(*error);
  const bool purge_memory = std::get<bool>(purge);
  MemoryManager* memory = options_.memory;
  if (purge_memory && memory == nullptr) {
    return route.Fail(ErrorForStatus(InternalError("no memory manager configured")));
  }
  RunWork(route, [registry = options_.registry, memory, reply = route.reply(),
                  name = locrit.name, purge_memory] {
    // The definition goes first, so no new request reaches the memory while it is purged.
    Result<LocritConfig> deleted = registry->Delete(name);
    if (!deleted.ok()) return reply.Fail(ErrorForStatus(deleted.status()));
    json::object body{
        {"success", true}, {"locrit_name", deleted->name}, {"memory_purged", purge_memory}};
    if (!purge_memory) return reply.Send(JsonResponse(200, body));
    memory->Purge(deleted->slug, [reply, body = std::move(body)](Status purged) {
      if (!purged.ok()) {
        return reply.Fail(ErrorForStatus(
            Status(purged.code(),
                   "the Locrit was deleted but its memory was not removed: " + purged.message())));
      }
      reply.Send(JsonResponse(200, body));
    });
  });
}

void Api::ListLlmModels(const Route& route) {
  // Only ever the named Locrit's own server: a URL in the request is never used.
  const std::optional<std::string> name = QueryParam(route.request.target, "locrit");
  if (!name || name->empty()) {
    return route.Fail({400, "invalid_argument",
                       "locrit is required: the Locrit whose model server to ask"});
  }
  Result<LocritConfig> locrit = options_.registry->Get(*name);
  if (!locrit.ok()) return route.Fail(ErrorForStatus(locrit.status()));
  const ChatLocrit chat = ChatLocritOf(*locrit, options_.llm_defaults);
  json::object body{{"success", true},
                    {"locrit_name", locrit->name},
                    {"provider", LocritProviderName(locrit->llm.provider)}};
  if (!chat.llm) {
    // The recall responder is the only "model" of a recall Locrit.
    body["url"] = nullptr;
    body["models"] = json::array{json::object{{"name", "recall"}}};
    body["count"] = 1;
    return route.Send(JsonResponse(200, body));
  }
  if (options_.llm == nullptr) {
    return route.Fail(ErrorForStatus(InternalError("no LLM runtime configured")));
  }
  LlmSettings settings = *chat.llm;
  settings.timeouts.connect = std::min(settings.timeouts.connect, kListModelsConnect);
  settings.timeouts.first_token = std::min(settings.timeouts.first_token, kListModelsTotal);
  settings.timeouts.idle = std::min(settings.timeouts.idle, kListModelsTotal);
  settings.timeouts.total = std::min(settings.timeouts.total, kListModelsTotal);
  body["url"] = EffectiveBaseUrl(settings);
  Result<std::shared_ptr<LlmClient>> client = options_.llm->NewClient(settings);
  if (!client.ok()) return route.Fail(ErrorForStatus(client.status()));
  // The call runs to its end (bounded by the timeouts above) even if the caller leaves.
  (*client)
      ->ListModels([client = *client, reply = route.reply(),
                    body = std::move(body)](Result<std::vector<ModelInfo>> models) mutable {
        if (!models.ok()) return reply.Fail(ErrorForStatus(models.status()));
        json::array list;
        for (const ModelInfo& model : *models) {
          json::object item{{"name", model.name}};
          if (model.size_bytes) item["size_bytes"] = *model.size_bytes;
          list.push_back(std::move(item));
        }
        body["count"] = list.size();
        body["models"] = std::move(list);
        reply.Send(JsonResponse(200, body));
      })
      .Detach();
}

}  // namespace locrit
