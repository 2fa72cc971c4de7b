// The Locrit object as a request body (API.md "Locrits (operator)"): the defaults of a new
// Locrit and the application of a whole or partial JSON Locrit onto a definition. Pure;
// thread-safe.
#pragma once

#include <boost/json.hpp>

#include "base/status.h"
#include "core/locrit_config.h"
#include "llm/llm_settings.h"

namespace locrit {

// A new Locrit before its body is applied: API.md's defaults, and the server's default LLM
// (provider, URL and model of `llm_defaults`) when it names a model, else the built-in recall
// responder (model "recall"), which needs no server.
LocritConfig NewLocritDefaults(const LlmSettings& llm_defaults);

// Applies the fields present in `body` onto `config`:
//   name, description (strings); system_prompt, public_address (string or null: null clears);
//   model (string; alias ollama_model); llm {provider: "ollama"|"openai"|"recall", url: string
//   or null} (url alias: ollama_url); active (boolean); open_to {humans, locrits, invitations,
//   internet, platform} and access_to {logs, quick_memory, full_memory, llm_info} (booleans, each
//   optional); memory {max_messages >= 0, context_messages 0..1000} (integers).
// When both spellings are sent, the canonical one (model, llm.url) wins. Absent fields keep their
// value; unknown and read-only fields (slug, created_at, updated_at) are ignored.
// A body that gives a model or a URL without llm.provider to a recall Locrit switches it to
// "ollama" (what the old app's ollama_model/ollama_url meant). The result must be servable: a
// model for ollama/openai and a valid http(s) URL (required for openai). Lengths and the name's
// rules are the registry's (ValidateLocritConfig).
// invalid_argument naming the field ("open_to.internet must be a boolean"); `config` may then be
// partly changed (callers apply onto a copy).
Status ApplyLocritFields(const boost::json::object& body, LocritConfig* config);

}  // namespace locrit
