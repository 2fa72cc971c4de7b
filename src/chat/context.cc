#include "chat/context.h"

#include <fmt/format.h>

#include <ctime>
#include <unordered_set>

#include "base/utf8.h"

namespace locrit {

std::string DefaultSystemPrompt(const std::string& name, const std::string& description) {
  std::string prompt = fmt::format("Tu es {}, un Locrit.", name);
  if (!description.empty()) prompt += " " + description;
  return prompt;
}

std::string FormatUtcMinute(int64_t unix_millis) {
  const std::time_t seconds = static_cast<std::time_t>(unix_millis / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02} UTC", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min);
}

namespace {

std::string RecalledLine(const RecalledItem& item) {
  if (item.kind == RecalledItem::Kind::kMemory) {
    return fmt::format("- [souvenir, {}] {}", FormatUtcMinute(item.at), item.text);
  }
  return fmt::format("- [message de {}, {}] {}",
                     item.role == Role::kAssistant ? "toi" : "l'utilisateur",
                     FormatUtcMinute(item.at), item.text);
}

ChatMessage ToChatMessage(const Message& message) {
  return {std::string(RoleName(message.role)), message.content};
}

}  // namespace

std::vector<ChatMessage> AssembleContext(const ContextInput& input) {
  std::vector<ChatMessage> context;
  context.push_back({"system", input.system_prompt.empty()
                                   ? DefaultSystemPrompt(input.locrit_name, input.description)
                                   : input.system_prompt});

  std::unordered_set<std::string> in_window;
  for (const Message& message : input.window) in_window.insert(message.id);
  std::string recalled;
  size_t used = 0;
  std::unordered_set<std::string> taken;
  for (const RecalledItem& item : input.recalled) {
    if (item.id == input.new_message_id || in_window.contains(item.id)) continue;
    if (!taken.insert(item.id).second) continue;
    const std::string line = RecalledLine(item);
    const size_t chars = CountCodePoints(line);
    // Whole items only: a cut memory can say the opposite of the whole one. A smaller item
    // further down may still fit.
    if (used + chars > input.recall_budget_chars) continue;
    used += chars;
    recalled += line + "\n";
  }
  if (!recalled.empty()) {
    context.push_back({"system",
                       "Souvenirs rappelés de ta mémoire (ils ne font pas partie de la "
                       "conversation en cours) :\n" +
                           recalled});
  }

  for (const Message& message : input.window) {
    if (message.id == input.new_message_id) continue;
    context.push_back(ToChatMessage(message));
  }
  context.push_back({"user", input.new_message});
  return context;
}

}  // namespace locrit
