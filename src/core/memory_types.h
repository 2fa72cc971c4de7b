// Domain value types of one Locrit's graph memory (DESIGN.md, "Data model").
//
// Plain values: no I/O, no behaviour beyond name conversions. Timestamps are Unix milliseconds
// (UTC); `seq` is a message's insertion order and the only ordering key for history.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace locrit {

enum class Role { kUser, kAssistant, kSystem };
std::string_view RoleName(Role role);  // "user", "assistant", "system"
std::optional<Role> ParseRole(std::string_view name);

// ok: a normal message. unanswered: a user message whose reply failed. incomplete: a reply cut off
// (caller gone or stream broken).
enum class MessageStatus { kOk, kUnanswered, kIncomplete };
std::string_view MessageStatusName(MessageStatus status);
std::optional<MessageStatus> ParseMessageStatus(std::string_view name);

enum class NodeType { kUser, kSession, kMessage, kConcept, kTopic, kMemory };
std::string_view NodeTypeName(NodeType type);  // "user", "session", "message", ...
std::optional<NodeType> ParseNodeType(std::string_view name);

// Typed relations; each has a fixed (from, to) pair of node types.
enum class RelationType { kSent, kPartOf, kRespondsTo, kMentions, kRelatesTo, kDiscusses, kLearns };
std::string_view RelationTypeName(RelationType type);  // "SENT", "PART_OF", ...
std::optional<RelationType> ParseRelationType(std::string_view name);  // case-insensitive
NodeType RelationFromType(RelationType type);
NodeType RelationToType(RelationType type);

struct User {
  std::string id;
  std::string name;
  int64_t created_at = 0;
};

struct Session {
  std::string id;
  std::string user_id;
  std::string name;
  std::string topic;
  int64_t created_at = 0;
  int64_t last_activity = 0;
  int64_t message_count = 0;
};

struct Message {
  int64_t seq = 0;
  std::string id;
  std::string session_id;
  std::string user_id;
  Role role = Role::kUser;
  std::string content;
  int64_t created_at = 0;
  std::string metadata = "{}";  // A JSON object, as text.
  MessageStatus status = MessageStatus::kOk;
};

struct Memory {
  std::string id;
  std::string content;
  double importance = 0.5;  // 0..1
  int64_t created_at = 0;
  int64_t last_accessed = 0;
  std::string metadata = "{}";  // A JSON object, as text.
};

struct Concept {
  std::string id;
  std::string name;
  std::string type;
  std::string description;
  double confidence = 1.0;  // 0..1
  int64_t created_at = 0;
};

struct Topic {
  std::string id;
  std::string name;
  std::string description;
  std::string category;
  int64_t created_at = 0;
};

// An edge. `strength` is the type's numeric property: SENT weight, MENTIONS confidence,
// RELATES_TO strength, DISCUSSES relevance, LEARNS strength. `position` is PART_OF position or
// RESPONDS_TO delay_seconds. `relationship_type` is RELATES_TO's label. Edge ids have the form
// "<type lower-case>:<number>" ("mentions:12").
struct Relation {
  std::string id;
  RelationType type = RelationType::kRelatesTo;
  std::string from_id;
  std::string to_id;
  double strength = 1.0;
  int64_t position = 0;
  std::string relationship_type;
};

}  // namespace locrit
