#include "core/memory_types.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace locrit {
namespace {

template <typename E, size_t N>
std::optional<E> ParseByName(const std::array<std::string_view, N>& names, std::string_view name,
                             bool ignore_case) {
  for (size_t i = 0; i < N; ++i) {
    const std::string_view candidate = names[i];
    const bool same =
        candidate.size() == name.size() &&
        std::equal(candidate.begin(), candidate.end(), name.begin(), [&](char a, char b) {
          return ignore_case ? std::tolower(static_cast<unsigned char>(a)) ==
                                   std::tolower(static_cast<unsigned char>(b))
                             : a == b;
        });
    if (same) return static_cast<E>(i);
  }
  return std::nullopt;
}

constexpr std::array<std::string_view, 3> kRoleNames = {"user", "assistant", "system"};
constexpr std::array<std::string_view, 3> kStatusNames = {"ok", "unanswered", "incomplete"};
constexpr std::array<std::string_view, 6> kNodeNames = {"user",    "session", "message",
                                                        "concept", "topic",   "memory"};
constexpr std::array<std::string_view, 7> kRelationNames = {
    "SENT", "PART_OF", "RESPONDS_TO", "MENTIONS", "RELATES_TO", "DISCUSSES", "LEARNS"};

struct Ends {
  NodeType from;
  NodeType to;
};
constexpr std::array<Ends, 7> kRelationEnds = {{
    {NodeType::kUser, NodeType::kMessage},      // SENT
    {NodeType::kMessage, NodeType::kSession},   // PART_OF
    {NodeType::kMessage, NodeType::kMessage},   // RESPONDS_TO
    {NodeType::kMessage, NodeType::kConcept},   // MENTIONS
    {NodeType::kConcept, NodeType::kConcept},   // RELATES_TO
    {NodeType::kSession, NodeType::kTopic},     // DISCUSSES
    {NodeType::kSession, NodeType::kMemory},    // LEARNS
}};

}  // namespace

std::string_view RoleName(Role role) { return kRoleNames[static_cast<size_t>(role)]; }
std::optional<Role> ParseRole(std::string_view name) {
  return ParseByName<Role>(kRoleNames, name, false);
}

std::string_view MessageStatusName(MessageStatus status) {
  return kStatusNames[static_cast<size_t>(status)];
}
std::optional<MessageStatus> ParseMessageStatus(std::string_view name) {
  return ParseByName<MessageStatus>(kStatusNames, name, false);
}

std::string_view NodeTypeName(NodeType type) { return kNodeNames[static_cast<size_t>(type)]; }
std::optional<NodeType> ParseNodeType(std::string_view name) {
  return ParseByName<NodeType>(kNodeNames, name, true);
}

std::string_view RelationTypeName(RelationType type) {
  return kRelationNames[static_cast<size_t>(type)];
}
std::optional<RelationType> ParseRelationType(std::string_view name) {
  return ParseByName<RelationType>(kRelationNames, name, true);
}
NodeType RelationFromType(RelationType type) { return kRelationEnds[static_cast<size_t>(type)].from; }
NodeType RelationToType(RelationType type) { return kRelationEnds[static_cast<size_t>(type)].to; }

}  // namespace locrit
